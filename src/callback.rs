//! Callbacks on handles, Python's `callback=` and `error_callback=`: one
//! thread of the process runs each callback once, when its handle settles,
//! in the order the handles settle. Like Python's result-handler thread, a
//! slow callback delays the callbacks behind it, never the pool.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::driver::READY;

/// A registered callback: looks whether its handle settled and, if so,
/// runs the callback; true once it has run.
type Poll = Box<dyn FnMut() -> bool + Send>;

/// The callback thread's name.
const THREAD_NAME: &str = "procpool-callbacks";

thread_local! {
    /// Set on the callback thread alone (a name can be anyone's).
    static ON_CALLBACK_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The callbacks given to the callback thread and not yet taken by it.
static NEW: Mutex<Vec<(Poll, Arc<Pending>)>> = Mutex::new(Vec::new());

/// How many callbacks of one pool have not run yet, so that
/// [`Pool::join`](crate::Pool::join) can wait for them, as Python's does.
#[derive(Debug, Default)]
pub(crate) struct Pending(AtomicUsize);

impl Pending {
    /// Whether every callback registered against this count has run.
    pub fn is_empty(&self) -> bool {
        self.0.load(Ordering::SeqCst) == 0
    }

    /// Waits until every callback registered against this count has run;
    /// on the callback thread itself (a callback that joins its pool) it
    /// cannot, and returns at once instead of waiting for itself.
    pub fn wait_empty(&self) {
        if ON_CALLBACK_THREAD.get() {
            return;
        }
        loop {
            let seen = READY.generation();
            if self.is_empty() {
                return;
            }
            READY.wait_past(seen, None);
        }
    }
}

/// Runs `then(handle)` on the callback thread once `ready(&mut handle)`
/// says the handle has settled; counted in `pending` until it has run.
pub(crate) fn when_ready<H: Send + 'static>(
    pending: &Arc<Pending>,
    handle: H,
    mut ready: impl FnMut(&mut H) -> bool + Send + 'static,
    then: impl FnOnce(H) + Send + 'static,
) {
    let mut waiting = Some((handle, then));
    let poll = move || {
        let settled = waiting.as_mut().is_none_or(|(handle, _)| ready(handle));
        if settled && let Some((handle, then)) = waiting.take() {
            then(handle);
        }
        settled
    };
    register(Box::new(poll), pending);
}

/// Hands `poll` to the callback thread (starting it the first time), counted
/// in `pending` until it has run.
fn register(poll: Poll, pending: &Arc<Pending>) {
    static THREAD: OnceLock<()> = OnceLock::new();
    pending.0.fetch_add(1, Ordering::SeqCst);
    NEW.lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((poll, Arc::clone(pending)));
    THREAD.get_or_init(|| {
        std::thread::Builder::new()
            .name(THREAD_NAME.into())
            .spawn(serve)
            .expect("cannot start the thread that runs procpool's callbacks");
    });
    READY.notify();
}

/// The callback thread: looks at its callbacks' handles whenever any
/// handle of the process settles (or a callback is registered), and runs
/// those that settled. A callback that panics is reported on stderr and
/// the others go on.
fn serve() {
    ON_CALLBACK_THREAD.set(true);
    let mut waiting: Vec<(Poll, Arc<Pending>)> = Vec::new();
    loop {
        let seen = READY.generation();
        waiting.append(&mut NEW.lock().unwrap_or_else(|e| e.into_inner()));
        let mut ran = false;
        waiting.retain_mut(|(poll, pending)| {
            // A panic has been printed by the hook; the callback counts as run.
            let done =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(&mut *poll)).unwrap_or(true);
            if done {
                pending.0.fetch_sub(1, Ordering::SeqCst);
                ran = true;
            }
            !done
        });
        if ran {
            // Whoever waits in `join` looks again.
            READY.notify();
        } else {
            READY.wait_past(seen, None);
        }
    }
}
