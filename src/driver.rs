//! The supervisor thread: it owns the pool's backend, runs its turns while
//! there is work, and hands each call's deliveries to the channel of the
//! call that waits for them. Calls reach it as closures over a channel, so
//! threads that share a pool never wait on each other's work, and a handle
//! on a task owns its channel and can move to any thread.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::backend::{Backend, CallId, Delivery, Encoded};
use crate::callback::Pending;
use crate::error::PoolError;

/// What a call's channel carries: a delivery, or why the pool stopped.
pub(crate) type Settled = Result<Delivery, PoolError>;

/// A call for the supervisor thread.
type Errand = Box<dyn FnOnce(&mut Driver) + Send>;

enum Message {
    Errand(Errand),
    /// The pool is dropped: stop the workers and end the thread.
    Stop,
}

/// The supervisor thread's state.
pub(crate) struct Driver {
    pub backend: Backend,
    /// Where each call's deliveries go.
    calls: HashMap<CallId, Watch>,
    /// Set while the thread waits in a turn, when a call must wake it.
    waiting: Arc<AtomicBool>,
}

/// A call's channel, and whether the call is one chunk (done once delivered).
struct Watch {
    sink: Sender<Settled>,
    single: bool,
}

/// The pool's side of the supervisor thread: shared by the pool and every
/// handle on its work.
pub(crate) struct Link {
    calls: Sender<Message>,
    /// Ends the supervisor's wait in a turn, so a call is served at once.
    waker: Option<ipc_channel::ipc::IpcSender<()>>,
    waiting: Arc<AtomicBool>,
    next_call: AtomicU64,
    /// The process the thread runs in: a child forked since has no such thread.
    owner: u32,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// The callbacks on this pool's handles that have not run yet.
    pub callbacks: Arc<Pending>,
}

impl Link {
    /// Starts the supervisor thread with `backend`.
    pub fn start(backend: Backend) -> Result<Link, PoolError> {
        let (calls, inbox) = mpsc::channel();
        let waker = backend.waker();
        let waiting = Arc::new(AtomicBool::new(false));
        let driver = Driver {
            backend,
            calls: HashMap::new(),
            waiting: Arc::clone(&waiting),
        };
        let thread = std::thread::Builder::new()
            .name("procpool-supervisor".into())
            .spawn(move || driver.serve(&inbox))
            .map_err(|e| PoolError::os("cannot start the supervisor thread", e))?;
        Ok(Link {
            calls,
            waker,
            waiting,
            next_call: AtomicU64::new(1),
            owner: std::process::id(),
            thread: Mutex::new(Some(thread)),
            callbacks: Arc::default(),
        })
    }

    /// Whether this is the process whose thread serves the pool (not a
    /// child forked since).
    ///
    /// # Errors
    ///
    /// [`PoolError::Forked`] in a forked child, which has no supervisor
    /// thread: a call there would wait forever.
    pub fn check_owner(&self) -> Result<(), PoolError> {
        match std::process::id() {
            pid if pid == self.owner => Ok(()),
            pid => Err(PoolError::Forked {
                owner: self.owner,
                pid,
            }),
        }
    }

    /// Runs `call` on the supervisor thread and waits for its answer.
    ///
    /// # Errors
    ///
    /// [`PoolError::Closed`] when the pool was dropped, and
    /// [`PoolError::Forked`] in a forked child.
    pub fn run<R: Send + 'static>(
        &self,
        call: impl FnOnce(&mut Driver) -> R + Send + 'static,
    ) -> Result<R, PoolError> {
        self.check_owner()?;
        let (answer, answered) = mpsc::sync_channel(1);
        self.post(move |driver| {
            let _ = answer.send(call(driver));
        });
        answered.recv().map_err(|_| PoolError::Closed)
    }

    /// Runs `call` on the supervisor thread, not waiting for it.
    pub fn post(&self, call: impl FnOnce(&mut Driver) + Send + 'static) {
        self.send(Message::Errand(Box::new(call)));
    }

    /// Sends `message`, waking the thread if it waits in a turn.
    fn send(&self, message: Message) {
        if self.calls.send(message).is_ok()
            && let Some(waker) = &self.waker
            && self.waiting.swap(false, Ordering::SeqCst)
        {
            let _ = waker.send(());
        }
    }

    /// A new call for `task` and the channel its deliveries come on; `work`
    /// goes with it (a single call, forgotten once delivered). If the
    /// workers do not know the task, or the pool is closed, that error is
    /// the channel's first message.
    pub fn open(&self, task: &'static str, work: Option<Encoded>) -> (CallId, Receiver<Settled>) {
        let id = self.next_call.fetch_add(1, Ordering::Relaxed);
        let (sink, deliveries) = mpsc::channel();
        self.post(move |driver| {
            let opened = driver
                .backend
                .check_task(task)
                .and_then(|()| driver.backend.open_call(id));
            if let Err(error) = opened {
                let _ = sink.send(Err(error));
                return;
            }
            let single = work.is_some();
            driver.calls.insert(id, Watch { sink, single });
            if let Some(work) = work {
                driver.backend.submit(id, work);
            }
        });
        (id, deliveries)
    }

    /// Queues `work` for the open call `id` (none if its opening failed).
    pub fn submit(&self, id: CallId, work: Encoded) {
        self.post(move |driver| {
            if driver.calls.contains_key(&id) {
                driver.backend.submit(id, work);
            }
        });
    }

    /// Drops what `call` still has queued, and its deliveries to come.
    pub fn abandon(&self, call: CallId) {
        self.post(move |driver| {
            driver.calls.remove(&call);
            driver.backend.abandon(call);
        });
    }

    /// Stops the supervisor thread, which stops the workers, and waits for it.
    pub fn stop(&self) {
        // A forked child has no supervisor thread to stop, and its workers
        // are not its own: it leaves them to the parent.
        if self.check_owner().is_err() {
            return;
        }
        self.send(Message::Stop);
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = thread {
            // A panic there has been reported on stderr already.
            let _ = thread.join();
        }
    }
}

impl Driver {
    /// The thread's loop: calls first (waiting for one while there is no
    /// work), then one turn of the backend, then the deliveries handed out.
    fn serve(mut self, inbox: &Receiver<Message>) {
        loop {
            let message = if self.backend.has_work() {
                // Posted calls wake the turn's wait from now on; one posted
                // before is seen here (each side looks after it writes).
                self.waiting.store(true, Ordering::SeqCst);
                match inbox.try_recv() {
                    Ok(message) => message,
                    Err(TryRecvError::Empty) => {
                        let turn = self.backend.turn();
                        self.waiting.store(false, Ordering::SeqCst);
                        self.hand_out();
                        if let Err(error) = turn {
                            self.fail(&error);
                        }
                        continue;
                    }
                    Err(TryRecvError::Disconnected) => return,
                }
            } else {
                match inbox.recv() {
                    Ok(message) => message,
                    Err(_) => return,
                }
            };
            self.waiting.store(false, Ordering::SeqCst);
            match message {
                Message::Errand(call) => call(&mut self),
                Message::Stop => return,
            }
            self.hand_out();
        }
    }

    /// Sends the calls delivered to their deliveries; a call whose caller is
    /// gone is abandoned.
    fn hand_out(&mut self) {
        let mut sent = false;
        let mut gone = Vec::new();
        for call in self.backend.take_ready() {
            let Some(watch) = self.calls.get(&call) else {
                continue;
            };
            while let Some(delivery) = self.backend.take_delivered(call) {
                let taken = watch.sink.send(Ok(delivery)).is_ok();
                sent |= taken;
                if !taken || watch.single {
                    gone.push((call, taken));
                    break;
                }
            }
        }
        for (call, done) in gone {
            self.calls.remove(&call);
            match done {
                // A single call's one delivery is taken: nothing of it is left.
                true => self.backend.forget(call),
                false => self.backend.abandon(call),
            }
        }
        if sent {
            READY.notify();
        }
    }

    /// Ends every call with work outstanding with `error` (after what it had
    /// delivered, which [`hand_out`](Self::hand_out) sent first).
    fn fail(&mut self, error: &PoolError) {
        let stopped: Vec<CallId> = self
            .calls
            .keys()
            .copied()
            .filter(|&call| self.backend.outstanding(call))
            .collect();
        for call in stopped {
            if let Some(watch) = self.calls.remove(&call) {
                let _ = watch.sink.send(Err(error.duplicate()));
            }
            self.backend.abandon(call);
        }
        READY.notify();
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Waiters on any handle look again: theirs may be gone with the pool.
        self.calls.clear();
        READY.notify();
    }
}

/// Wakes whoever waits for any of several handles, of any pool in this
/// process: a generation counter bumped on every hand-out.
pub(crate) struct Ready {
    generation: Mutex<u64>,
    changed: Condvar,
}

pub(crate) static READY: Ready = Ready {
    generation: Mutex::new(0),
    changed: Condvar::new(),
};

impl Ready {
    /// Wakes every waiter to look at its handles again.
    pub fn notify(&self) {
        *self.generation.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.changed.notify_all();
    }

    /// The current generation, to wait past after a look at the handles.
    pub fn generation(&self) -> u64 {
        *self.generation.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until the generation moves past `seen`, or `timeout` passes;
    /// returns whether it moved.
    pub fn wait_past(&self, seen: u64, timeout: Option<Duration>) -> bool {
        let generation = self.generation.lock().unwrap_or_else(|e| e.into_inner());
        let unchanged = |g: &mut u64| *g == seen;
        match timeout {
            None => {
                let _moved = self.changed.wait_while(generation, unchanged);
                true
            }
            Some(timeout) => {
                let (_moved, result) = self
                    .changed
                    .wait_timeout_while(generation, timeout, unchanged)
                    .unwrap_or_else(|e| e.into_inner());
                !result.timed_out()
            }
        }
    }
}
