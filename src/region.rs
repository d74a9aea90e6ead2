//! Reusable shared-memory regions: how a large frame's bytes travel.
//!
//! Each direction of a worker's channel pair gets one region, made by its
//! writer (the supervisor for requests, the worker for replies) the first
//! time a large frame goes that way, sent once, and reused for every large
//! frame after. A frame then costs a copy into pages both sides mapped
//! long ago and a copy out of them by its reader (who makes no reference
//! into memory the other process can write), and the channel carries only
//! where it is; a segment per
//! message cost a memfd, a truncate, a map and an unmap on each side, and a
//! page fault per 4 KiB on each side for every message.
//!
//! Space in a region is a [`Ring`]: positions only grow, position `p` is
//! byte `(p - base) % size`, and a frame never wraps (one that does not fit
//! before the end starts at the next turn). The writer frees nothing by
//! itself. The supervisor's request space is free again when the worker's
//! reply to that chunk arrives (a worker runs its chunks in order, and is
//! done reading when it replies); the worker's reply space is free again
//! as soon as the supervisor has copied the reply out into its [`Frame`],
//! and each request tells the worker how far that is ([`Message::freed`]). Correctness never depends on room: a frame
//! that finds none goes in a segment of its own, as before regions.
//!
//! The supervisor trusts nothing a worker says about its region: every
//! reply's place is checked against the supervisor's own ring (after the
//! last frame, inside the region, in space the supervisor has freed), and a
//! bad one is a protocol error, which stops that worker. (A worker that
//! truncates the region's memfd could make the supervisor fault; so could
//! one that truncates the segment of a reply, as before regions, or one
//! that sends it a signal: the worker is not a sandbox, and this module
//! guards against bytes, not system calls.)

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use ipc_channel::ipc::IpcSharedMemory;
use serde::Serialize;

use crate::codec::{self, CodecError};
use crate::protocol::{Carrier, Frame, Message, SHARED_MEMORY_THRESHOLD};

/// The smallest region made: a few of the frames that first need one, or
/// the deep window (8 chunks) of frames just above the threshold. Its pages
/// are written once when it is made, about a millisecond.
const MIN_REGION: usize = 4 << 20;

/// The largest region made. A region is made (or replaced by a larger one)
/// to hold two frames of the size that asked for it, rounded up to a MiB:
/// the two chunks in flight of a worker running long ones (the adaptive
/// window's shallow depth), and the two replies a worker may have out
/// before it hears that the first is freed. One found full of frames in
/// flight is replaced by one twice as large. Every page is written when it
/// is made, so a region no larger than needed keeps a one-off call as fast
/// as with a segment per message. Frames over half of this always get a
/// segment of their own. The memory a pool keeps is at most this per direction per
/// worker (and a smaller region it replaced, while frames in it are
/// unread), and only after frames that large went that way.
const MAX_REGION: usize = 32 << 20;

/// Region sizes are multiples of this.
const REGION_STEP: usize = 1 << 20;

/// Where frames go in a region of `size` bytes, in positions that only
/// grow (`u64` positions do not wrap in practice: 2^64 bytes).
#[derive(Debug)]
pub(crate) struct Ring {
    /// The region's length in bytes.
    size: u64,
    /// The position of the region's first byte.
    base: u64,
    /// Where the last frame ended.
    head: u64,
    /// Frames placed and not yet freed, in position order.
    live: VecDeque<Live>,
}

/// A frame placed and not yet freed: positions `at..end`.
#[derive(Debug, Clone, Copy)]
struct Live {
    at: u64,
    end: u64,
    /// Freed, but a frame before it is not yet.
    done: bool,
}

impl Ring {
    /// An empty ring whose first byte is position `base`.
    pub fn new(base: u64, size: u64) -> Ring {
        Ring {
            size,
            base,
            head: base,
            live: VecDeque::new(),
        }
    }

    /// Every position before this one is free again.
    pub fn freed(&self) -> u64 {
        self.live.front().map_or(self.head, |live| live.at)
    }

    /// Where a frame of `len` bytes would go now, if it fits.
    pub fn place(&self, len: u64) -> Option<u64> {
        if len == 0 || len > self.size {
            return None;
        }
        let offset = (self.head - self.base) % self.size;
        let at = if offset + len <= self.size {
            self.head
        } else {
            self.head + (self.size - offset)
        };
        (at + len <= self.freed().saturating_add(self.size)).then_some(at)
    }

    /// Records the frame of `len` bytes at `at` as placed, and returns its
    /// byte offset, if it is a place [`place`](Self::place) could have
    /// given: after the last frame, not across the region's end, in free
    /// space. A place that skips ahead is fine; the space skipped is free.
    pub fn claim(&mut self, at: u64, len: u64) -> Result<usize, String> {
        let end = at
            .checked_add(len)
            .filter(|_| len > 0 && len <= self.size)
            .ok_or_else(|| format!("{len} bytes do not fit its region of {}", self.size))?;
        if at < self.head {
            return Err(format!(
                "a frame at {at} is before the end of its last one ({})",
                self.head
            ));
        }
        let offset = (at - self.base) % self.size;
        if offset + len > self.size {
            return Err(format!(
                "a frame of {len} bytes at offset {offset} crosses the end of its region of {}",
                self.size
            ));
        }
        if end > self.freed().saturating_add(self.size) {
            return Err(format!(
                "a frame at {at}..{end} overwrites frames not yet freed (from {})",
                self.freed()
            ));
        }
        self.live.push_back(Live {
            at,
            end,
            done: false,
        });
        self.head = end;
        Ok(offset as usize)
    }

    /// Frees the frame placed at `at`; its space is reused once every frame
    /// before it is freed too.
    pub fn release(&mut self, at: u64) {
        if let Some(live) = self.live.iter_mut().find(|live| live.at == at) {
            live.done = true;
        }
        while self.live.front().is_some_and(|live| live.done) {
            self.live.pop_front();
        }
    }

    /// The reader says every position before `pos` is free again.
    pub fn free_to(&mut self, pos: u64) {
        while self.live.front().is_some_and(|live| live.end <= pos) {
            self.live.pop_front();
        }
    }
}

/// A mapped region, with its ring on the side that tracks its space.
struct Region {
    /// Keeps the mapping alive; a clone goes to the peer once.
    memory: IpcSharedMemory,
    /// The mapping's first byte, taken once from `deref_mut`; every access
    /// goes through it, to a range this side owns at that moment.
    start: *mut u8,
    /// The mapping's length in bytes.
    size: usize,
    /// The position of the region's first byte.
    base: u64,
    /// The space, tracked by the writer and by the supervisor reading.
    ring: Option<Mutex<Ring>>,
}

// SAFETY: the pointer is into a mapping `memory` keeps alive for as long as
// the region lives; the ranges read and written through it are handed out
// by the ring (under its lock) so that no two users in this process touch
// one range at once.
unsafe impl Send for Region {}
// SAFETY: as for Send; `&Region` only reads through `start` (Span) or
// writes to a range the caller claimed in the ring.
unsafe impl Sync for Region {}

impl Region {
    /// Takes over a mapping; `tracked` gives it a ring starting at `base`.
    fn new(mut memory: IpcSharedMemory, base: u64, tracked: bool) -> Region {
        // SAFETY: this process has no other reference to this mapping (a new
        // one, or one just received); from here on only the raw pointer is
        // used, for ranges claimed in the ring. Another process writes the
        // same memory: that is the point of it. The protocol keeps a range
        // written by one side and read by the other never at the same time
        // (a writer writes only space the reader has freed, and sends where
        // only after writing), and a peer that breaks it changes only bytes
        // (plain `u8`s, valid whatever they hold) inside bounds checked here.
        let bytes = unsafe { memory.deref_mut() };
        let (start, size) = (bytes.as_mut_ptr(), bytes.len());
        Region {
            memory,
            start,
            size,
            base,
            ring: tracked.then(|| Mutex::new(Ring::new(base, size as u64))),
        }
    }

    /// The ring, on the side that tracks it.
    fn ring(&self) -> Option<MutexGuard<'_, Ring>> {
        self.ring
            .as_ref()
            .map(|ring| ring.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Copies `parts` back to back from byte `offset`.
    ///
    /// # Safety
    ///
    /// `offset..offset + total` is inside the region and claimed in its
    /// ring by the caller, so nobody reads or writes it meanwhile.
    unsafe fn write(&self, offset: usize, parts: &[&[u8]]) {
        let mut at = offset;
        for part in parts {
            debug_assert!(at + part.len() <= self.size);
            // SAFETY: in bounds and owned, as the caller promises; the source
            // is ordinary memory of this process, never the region.
            unsafe {
                std::ptr::copy_nonoverlapping(part.as_ptr(), self.start.add(at), part.len());
            }
            at += part.len();
        }
    }

    /// The byte offset of position `at`, if `len` bytes from there are
    /// inside the region: the check of a side that does not track space.
    fn bounds(&self, at: u64, len: u64) -> Result<usize, String> {
        let size = self.size as u64;
        let offset = at
            .checked_sub(self.base)
            .map(|from| from % size)
            .ok_or_else(|| format!("a frame at {at} is before its region ({})", self.base))?;
        if len == 0 || offset.checked_add(len).is_none_or(|end| end > size) {
            return Err(format!(
                "a frame of {len} bytes at offset {offset} does not fit its region of {size}"
            ));
        }
        Ok(offset as usize)
    }
}

/// A frame's bytes in a region; dropping it frees them for reuse.
pub(crate) struct Span {
    /// Kept mapped while the frame lives.
    region: Arc<Region>,
    /// Its position, to free it by.
    at: u64,
    /// Its bytes: `offset..offset + len` of the mapping, checked in bounds.
    offset: usize,
    len: usize,
}

impl Span {
    /// A copy of the frame's bytes. The copy reads the mapping through its
    /// raw pointer and makes no reference into it: the peer may write these
    /// bytes at any moment (a buggy or hostile worker), and a `&[u8]` over
    /// them would promise Rust they cannot change.
    fn copy_out(&self) -> Vec<u8> {
        copy_from(self.region.start.wrapping_add(self.offset), self.len)
    }
}

/// Copies `len` bytes from `source`, memory of a mapping that another
/// process may write meanwhile, into a new buffer of this process.
fn copy_from(source: *const u8, len: usize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(len);
    // SAFETY: `source..source + len` lies in a live mapping (the callers
    // check the bounds and hold the mapping), and the buffer has room for
    // `len` bytes. Bytes written concurrently by the peer can only be
    // copied torn, which the decoder after this rejects or reads as data;
    // every bit pattern is a valid `u8`, so `set_len` exposes initialised
    // bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(source, bytes.as_mut_ptr(), len);
        bytes.set_len(len);
    }
    bytes
}

impl Drop for Span {
    fn drop(&mut self) {
        if let Some(mut ring) = self.region.ring() {
            ring.release(self.at);
        }
    }
}

/// Who frees the space of frames an [`Outbox`] sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Release {
    /// The sender, by dropping the [`Span`] `pack` returned (the
    /// supervisor, when the reply to a request arrives).
    OnDrop,
    /// The reader, by reporting how far it is done
    /// ([`free_to`](Outbox::free_to); the worker, told by the supervisor).
    Reported,
}

/// The writing side of one direction: frames into messages, large ones
/// through the region.
pub(crate) struct Outbox {
    /// Where large frames go, once made.
    region: Option<Arc<Region>>,
    /// Who frees what was sent.
    release: Release,
    /// The largest region this side makes: 0 to make none.
    max_region: usize,
    /// The encoded header of the frame being packed.
    header: Vec<u8>,
}

impl Outbox {
    /// An outbox with no region yet. Under an address-space limit
    /// (`ulimit -v`) it makes none: ipc-channel panics when a mapping
    /// fails, and a region is one more mapping on each side.
    pub fn new(release: Release) -> Outbox {
        let max = if crate::sys::address_space_limit().is_some() {
            0
        } else {
            MAX_REGION
        };
        Outbox::with_max(release, max)
    }

    fn with_max(release: Release, max_region: usize) -> Outbox {
        Outbox {
            region: None,
            release,
            max_region,
            header: Vec::new(),
        }
    }

    /// Packs `header` (encoded) and `payload` into one message, copying each
    /// byte once: inline when small, else into the region when it has room,
    /// else into a segment of its own. With [`Release::OnDrop`], a frame in
    /// the region comes with its [`Span`], to drop when the reader is done.
    ///
    /// # Errors
    ///
    /// If the header cannot be encoded.
    pub fn pack<H: Serialize>(
        &mut self,
        header: &H,
        payload: &[u8],
    ) -> Result<(Message, Option<Span>), CodecError> {
        let mut header_bytes = std::mem::take(&mut self.header);
        header_bytes.clear();
        let encoded = codec::encode_into(header, &mut header_bytes);
        let packed = encoded.map(|()| self.pack_bytes(&[&header_bytes[..], payload]));
        self.header = header_bytes;
        packed
    }

    fn pack_bytes(&mut self, parts: &[&[u8]]) -> (Message, Option<Span>) {
        let len: usize = parts.iter().map(|part| part.len()).sum();
        if len < SHARED_MEMORY_THRESHOLD {
            return (Message::inline(parts.concat()), None);
        }
        if let Some((bytes, span)) = self.write_to_region(len, parts) {
            return (Message { bytes, freed: 0 }, span);
        }
        let mut memory = IpcSharedMemory::from_byte(0, len);
        // SAFETY: a new segment, this process's only reference to it until sent.
        let target = unsafe { memory.deref_mut() };
        let mut at = 0;
        for part in parts {
            target[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        let bytes = Carrier::Shared(memory);
        (Message { bytes, freed: 0 }, None)
    }

    /// Writes a frame of `len` bytes into the region if it has room. A
    /// region that cannot hold two such frames is replaced by one that can;
    /// one full of frames not yet freed, by one twice as large (up to the
    /// largest): the frames in flight are what it must hold, a deep window
    /// of them (8 chunks) or the replies the pool has not read yet.
    fn write_to_region(&mut self, len: usize, parts: &[&[u8]]) -> Option<(Carrier, Option<Span>)> {
        let placed = match self.region.as_ref() {
            Some(region) if region.size / 2 >= len => {
                let mut ring = region.ring()?;
                match ring.place(len as u64) {
                    Some(at) => {
                        let offset = ring.claim(at, len as u64).ok()?;
                        Ok((Arc::clone(region), at, offset))
                    }
                    None => Err(region.size),
                }
            }
            _ => Err(0),
        };
        let (region, at, offset, new) = match placed {
            Ok((region, at, offset)) => (region, at, offset, false),
            Err(full) => {
                let (region, offset) = self.new_region(len, full)?;
                let at = region.base;
                (region, at, offset, true)
            }
        };
        // SAFETY: the ring just gave this range to us, and it is in bounds.
        unsafe { region.write(offset, parts) };
        let len = len as u64;
        let bytes = if new {
            let memory = region.memory.clone();
            Carrier::NewRegion {
                region: memory,
                at,
                len,
            }
        } else {
            Carrier::Region { at, len }
        };
        let span = (self.release == Release::OnDrop).then(|| Span {
            region,
            at,
            offset,
            len: len as usize,
        });
        Some((bytes, span))
    }

    /// Makes a region for a frame of `len` bytes, larger than `full` (the
    /// size of a region with no room, else 0), and claims the frame's place
    /// at its start; `None` if the largest region allowed is not that large.
    fn new_region(&mut self, len: usize, full: usize) -> Option<(Arc<Region>, usize)> {
        let size = (2 * len)
            .next_multiple_of(REGION_STEP)
            .max(MIN_REGION)
            .max(2 * full)
            .min(self.max_region);
        if size < 2 * len || size <= full {
            return None;
        }
        // Positions go on from where the last region's frames ended, so a
        // late report about that region frees nothing in this one.
        let base = self
            .region
            .as_ref()
            .and_then(|r| r.ring().map(|ring| ring.head))
            .unwrap_or(0);
        let region = Arc::new(Region::new(IpcSharedMemory::from_byte(0, size), base, true));
        let offset = region.ring()?.claim(base, len as u64).ok()?;
        // The last region lives on while frames in it do.
        self.region = Some(Arc::clone(&region));
        Some((region, offset))
    }

    /// The reader is done with every position before `pos`
    /// ([`Release::Reported`]).
    pub fn free_to(&mut self, pos: u64) {
        if let Some(mut ring) = self.region.as_ref().and_then(|r| r.ring()) {
            ring.free_to(pos);
        }
    }
}

/// The reading side of one direction: messages into frames, through the
/// peer's region once it has sent one.
pub(crate) struct Inbox {
    /// The peer's region, once sent.
    region: Option<Arc<Region>>,
    /// Whether the region's space is tracked, and every place checked
    /// against it (the supervisor reading a worker), or only its bounds (a
    /// worker reading its supervisor).
    track: bool,
}

impl Inbox {
    /// An inbox with no region yet.
    pub fn new(track: bool) -> Inbox {
        Inbox {
            region: None,
            track,
        }
    }

    /// The frame a message brings.
    ///
    /// # Errors
    ///
    /// A place outside the region (or, tracked, one that is not free), or
    /// a region frame before any region: one line.
    pub fn open(&mut self, message: Message) -> Result<Frame, String> {
        let (region, at, len) = match message.bytes {
            Carrier::Inline(bytes) => return Ok(Frame::from(bytes.into_vec())),
            Carrier::Shared(mut memory) => {
                // SAFETY: as in `Region::new`: only the raw pointer is kept,
                // and read once, by `copy_from`.
                let bytes = unsafe { memory.deref_mut() };
                let (source, len) = (bytes.as_mut_ptr().cast_const(), bytes.len());
                return Ok(Frame::from(copy_from(source, len)));
            }
            Carrier::Region { at, len } => {
                let region = self
                    .region
                    .as_ref()
                    .ok_or("a frame in a region before any region")?;
                (Arc::clone(region), at, len)
            }
            Carrier::NewRegion { region, at, len } => {
                if region.is_empty() {
                    return Err("an empty region".to_string());
                }
                let region = Arc::new(Region::new(region, at, self.track));
                self.region = Some(Arc::clone(&region));
                (region, at, len)
            }
        };
        let offset = match region.ring() {
            Some(mut ring) => ring.claim(at, len)?,
            None => region.bounds(at, len)?,
        };
        // The span is freed as soon as its bytes are copied out.
        let span = Span {
            region,
            at,
            offset,
            len: len as usize,
        };
        Ok(Frame::from(span.copy_out()))
    }

    /// Every position of the peer's region before this one is free again
    /// (tracked side; 0 before any region).
    pub fn freed(&self) -> u64 {
        self.region
            .as_ref()
            .and_then(|r| r.ring().map(|ring| ring.freed()))
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_go_round_the_ring_and_never_cross_its_end() {
        let mut ring = Ring::new(0, 100);
        assert_eq!(ring.place(40), Some(0));
        assert_eq!(ring.claim(0, 40), Ok(0));
        assert_eq!(ring.place(40), Some(40));
        assert_eq!(ring.claim(40, 40), Ok(40));
        // 20 bytes are left before the end, not 40: the next turn, once the
        // first frame is freed.
        assert_eq!(ring.place(40), None);
        ring.release(0);
        assert_eq!(ring.freed(), 40);
        assert_eq!(ring.place(40), Some(100));
        assert_eq!(ring.claim(100, 40), Ok(0));
        // The second frame is still out: not even 10 bytes are free.
        assert_eq!(ring.place(10), None);
        ring.release(40);
        assert_eq!(ring.place(10), Some(140));
    }

    #[test]
    fn frames_freed_out_of_order_free_space_in_order() {
        let mut ring = Ring::new(1000, 90);
        for at in [1000, 1030, 1060] {
            ring.claim(at, 30).unwrap();
        }
        assert_eq!(ring.place(30), None);
        ring.release(1060);
        ring.release(1030);
        // The first is still out: nothing is free yet.
        assert_eq!((ring.freed(), ring.place(30)), (1000, None));
        ring.release(1000);
        assert_eq!((ring.freed(), ring.place(90)), (1090, Some(1090)));
    }

    #[test]
    fn a_reported_position_frees_the_frames_before_it() {
        let mut ring = Ring::new(0, 64);
        ring.claim(0, 16).unwrap();
        ring.claim(16, 16).unwrap();
        ring.free_to(10);
        assert_eq!(ring.freed(), 0);
        ring.free_to(16);
        assert_eq!(ring.freed(), 16);
        ring.free_to(1 << 40);
        assert_eq!(ring.freed(), 32);
    }

    #[test]
    fn places_a_reader_did_not_free_are_refused() {
        let mut ring = Ring::new(0, 100);
        ring.claim(0, 60).unwrap();
        for (at, len, says) in [
            (0, 10, "before the end of its last one"),
            (60, 50, "crosses the end"),
            (100, 70, "not yet freed"),
            (60, 0, "do not fit"),
            (60, 101, "do not fit"),
            (u64::MAX - 5, 10, "do not fit"),
        ] {
            let err = ring.claim(at, len).unwrap_err();
            assert!(err.contains(says), "{at}+{len}: {err}");
        }
        // Skipping ahead is fine; what is skipped is free.
        assert_eq!(ring.claim(90, 10), Ok(90));
        ring.release(0);
        assert_eq!(ring.freed(), 90);
    }

    fn payload(len: usize, seed: u8) -> Vec<u8> {
        (0..len).map(|i| (i as u8).wrapping_add(seed)).collect()
    }

    /// An outbox and an inbox as the supervisor's requests use them.
    fn pair(max: usize) -> (Outbox, Inbox) {
        (Outbox::with_max(Release::OnDrop, max), Inbox::new(false))
    }

    fn carrier(message: &Message) -> &'static str {
        match message.bytes {
            Carrier::Inline(_) => "inline",
            Carrier::Shared(_) => "shared",
            Carrier::Region { .. } => "region",
            Carrier::NewRegion { .. } => "new region",
        }
    }

    #[test]
    fn large_frames_reuse_the_region_until_it_is_full_then_fall_back() {
        // No region larger than the first is allowed.
        let (mut out, mut inbox) = pair(MIN_REGION);
        let len = MIN_REGION / 4;
        let mut spans = VecDeque::new();
        let mut seen = Vec::new();
        for seed in 0..6u8 {
            let (message, span) = out.pack(&seed, &payload(len, seed)).unwrap();
            seen.push(carrier(&message));
            let frame = inbox.open(message).unwrap();
            let (back, rest) = crate::protocol::unframe::<u8>(&frame).unwrap();
            assert_eq!((back, rest), (seed, &payload(len, seed)[..]));
            spans.push_back(span);
        }
        // Three fit; a fourth would cross the end by its headers' bytes.
        assert_eq!(
            seen,
            [
                "new region",
                "region",
                "region",
                "shared",
                "shared",
                "shared"
            ]
        );
        // Freed out of order: the space comes back once the first is freed.
        let second = spans.remove(1);
        drop(second);
        let (message, _) = out.pack(&9u8, &payload(len, 9)).unwrap();
        assert_eq!(carrier(&message), "shared");
        spans.pop_front();
        let (message, _span) = out.pack(&9u8, &payload(len, 9)).unwrap();
        assert_eq!(carrier(&message), "region");
        assert_eq!(&inbox.open(message).unwrap()[1..], &payload(len, 9)[..]);
    }

    #[test]
    fn a_region_full_of_frames_in_flight_is_replaced_by_one_twice_as_large() {
        // Up to 16 MiB here.
        let (mut out, mut inbox) = pair(4 * MIN_REGION);
        let data = payload(MIN_REGION / 4, 0);
        let mut sizes = Vec::new();
        let mut frames = Vec::new();
        // 4 MiB holds three such frames, 8 MiB seven, 16 MiB fifteen.
        for seed in 0..3 + 7 + 15u8 {
            let (message, span) = out.pack(&seed, &data).unwrap();
            if let Carrier::NewRegion { ref region, .. } = message.bytes {
                sizes.push(region.len() >> 20);
            }
            frames.push((seed, inbox.open(message).unwrap(), span));
        }
        assert_eq!(sizes, [4, 8, 16]);
        for (seed, frame, _) in &frames {
            assert_eq!((frame[0], &frame[1..]), (*seed, &data[..]));
        }
        // At the largest, a full region sends frames alone.
        let (message, _) = out.pack(&0u8, &data).unwrap();
        assert_eq!(carrier(&message), "shared");
    }

    #[test]
    fn small_frames_go_inline_and_too_large_ones_alone() {
        let (mut out, mut inbox) = pair(MIN_REGION);
        let (small, span) = out.pack(&1u8, b"tiny").unwrap();
        assert!(span.is_none() && carrier(&small) == "inline");
        assert_eq!(&inbox.open(small).unwrap()[..], b"\x01tiny");
        // Over half the largest region: a segment of its own, whole.
        let big = payload(MIN_REGION / 2 + 1, 3);
        let (message, span) = out.pack(&2u8, &big).unwrap();
        assert!(span.is_none() && carrier(&message) == "shared");
        assert_eq!(&inbox.open(message).unwrap()[1..], &big[..]);
        // With no regions at all, every large frame goes alone.
        let (mut none, _) = pair(0);
        let (message, _) = none.pack(&2u8, &payload(20_000, 1)).unwrap();
        assert_eq!(carrier(&message), "shared");
    }

    #[test]
    fn a_larger_frame_gets_a_larger_region_and_the_old_one_lives_on() {
        let (mut out, mut inbox) = pair(MAX_REGION);
        let (first, span) = out.pack(&0u8, &payload(100_000, 0)).unwrap();
        let first = inbox.open(first).unwrap();
        let big = payload(MIN_REGION, 7);
        let (message, _big_span) = out.pack(&1u8, &big).unwrap();
        let Carrier::NewRegion { at, ref region, .. } = message.bytes else {
            panic!("expected a new region, got {}", carrier(&message));
        };
        // Positions go on from the old region's, and the new one is larger.
        assert_eq!((at, region.len()), (100_001, 2 * MIN_REGION + REGION_STEP));
        assert_eq!(&inbox.open(message).unwrap()[1..], &big[..]);
        // The first frame, in the old region, is intact and still frees.
        assert_eq!(&first[1..], &payload(100_000, 0)[..]);
        drop(span);
    }

    #[test]
    fn the_reader_refuses_places_outside_the_region_or_not_free() {
        // The supervisor reading a worker's replies: tracked. (The worker
        // makes no region larger than its first, here.)
        let data = payload(MIN_REGION / 2, 0);
        let len = data.len() as u64 + 1;
        let size = (2 * len).next_multiple_of(REGION_STEP as u64);
        let mut writer = Outbox::with_max(Release::Reported, size as usize);
        let mut reader = Inbox::new(true);
        let region_frame = |at, len| Message {
            bytes: Carrier::Region { at, len },
            freed: 0,
        };
        let err = reader.open(region_frame(0, 10)).err().unwrap();
        assert!(err.contains("before any region"), "{err}");
        let (message, _) = writer.pack(&0u8, &data).unwrap();
        let first = reader.open(message).unwrap();
        for (at, len) in [(0, 10), (u64::MAX, 2), (size - 5, 10), (1 << 40, 1)] {
            assert!(reader.open(region_frame(at, len)).is_err(), "{at}+{len}");
        }
        // The supervisor frees a frame's space as soon as it has copied the
        // bytes out, before the frame itself is dropped: the worker may
        // reuse it at once, and what the supervisor holds stays intact.
        assert_eq!(reader.freed(), len);
        let (message, _) = writer.pack(&0u8, &data).unwrap();
        assert_eq!(carrier(&message), "region");
        drop(reader.open(message).unwrap());
        assert_eq!(reader.freed(), 2 * len);
        writer.free_to(reader.freed());
        let (message, _) = writer.pack(&1u8, &data).unwrap();
        assert_eq!(carrier(&message), "region");
        assert_eq!(&reader.open(message).unwrap()[1..], &data[..]);
        assert_eq!(&first[1..], &data[..]);
        // An untracked reader checks bounds only, and refuses an empty region.
        let mut worker = Inbox::new(false);
        let empty = Message {
            bytes: Carrier::NewRegion {
                region: IpcSharedMemory::from_bytes(&[]),
                at: 0,
                len: 1,
            },
            freed: 0,
        };
        assert!(worker.open(empty).err().unwrap().contains("empty region"));
        let whole = Message {
            bytes: Carrier::NewRegion {
                region: IpcSharedMemory::from_byte(0, 4096),
                at: 5,
                len: 4096,
            },
            freed: 0,
        };
        assert!(worker.open(whole).is_ok());
        for (at, len) in [(4, 1), (5, 4097), (5 + 4000, 100), (9, u64::MAX), (9, 0)] {
            assert!(worker.open(region_frame(at, len)).is_err(), "{at}+{len}");
        }
    }
}
