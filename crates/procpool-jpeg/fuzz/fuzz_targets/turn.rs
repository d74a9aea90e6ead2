//! `turn180` on any bytes: an error, "cannot turn this one", or a JPEG that
//! passes the crate's own strict check with the same size, and turns back.
#![no_main]

use libfuzzer_sys::fuzz_target;

const MAX_PIXELS: u64 = 1 << 22;

fuzz_target!(|data: &[u8]| {
    let Ok(Some(turned)) = procpool_jpeg::turn180(data, 75, MAX_PIXELS) else {
        return;
    };
    let before = procpool_jpeg::inspect(data, MAX_PIXELS).expect("a turned file was valid");
    let after = procpool_jpeg::inspect(&turned.bytes, MAX_PIXELS).expect("the turn is valid");
    assert_eq!((before.width, before.height), (after.width, after.height));
    let back = procpool_jpeg::turn180(&turned.bytes, 75, MAX_PIXELS)
        .expect("the turn turns again")
        .expect("the turn is a baseline JPEG");
    let again = procpool_jpeg::inspect(&back.bytes, MAX_PIXELS).expect("turned twice is valid");
    assert_eq!((again.width, again.height), (before.width, before.height));
});
