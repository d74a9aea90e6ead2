//! The decoders behind `flip` on any bytes the strict check lets through:
//! pixels or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

const MAX_PIXELS: u64 = 1 << 22;

fuzz_target!(|data: &[u8]| {
    // flip decodes only what passed the check, and so does this target: the
    // check is what bounds the memory a decoder may ask for.
    if procpool_jpeg::check(data, MAX_PIXELS).is_err() {
        return;
    }
    let _ = procpool_jpeg::decode(data);
    let _ = procpool_jpeg::decode_planes(data);
});
