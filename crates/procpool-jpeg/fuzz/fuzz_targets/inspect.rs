//! `inspect` and `check` on any bytes: an answer or an error, never a panic,
//! and the two agree.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// Large enough for every seed, small enough that no input costs memory the
/// fuzzer would call a leak.
const MAX_PIXELS: u64 = 1 << 22;

fuzz_target!(|data: &[u8]| {
    let info = procpool_jpeg::inspect(data, MAX_PIXELS);
    let check = procpool_jpeg::check(data, MAX_PIXELS);
    assert_eq!(info.is_ok(), check.is_ok(), "inspect and check disagree");
    if let Ok(info) = info {
        assert!(procpool_jpeg::looks_like_jpeg(data));
        assert!(u64::from(info.width) * u64::from(info.height) <= MAX_PIXELS);
    }
});
