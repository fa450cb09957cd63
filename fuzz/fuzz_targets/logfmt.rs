#![no_main]

use libfuzzer_sys::fuzz_target;
use logpipe_fuzz::Format;

fuzz_target!(|data: &[u8]| logpipe_fuzz::check(Format::Logfmt, data));
