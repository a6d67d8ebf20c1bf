//! The HTTP upgrade parser: a request, then a response to it (the input split at the first
//! NUL, or parsed whole as both).
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsdump::http::{self, Parsed};

fuzz_target!(|data: &[u8]| {
    let (a, b) = match data.iter().position(|&x| x == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, data),
    };
    let req = match http::parse_request(a) {
        Parsed::Done(r, n) => {
            assert!(n <= a.len());
            let _ = http::request_body(&r);
            if let Some(k) = &r.key {
                let _ = http::accept_for(k);
            }
            Some(r)
        }
        Parsed::Partial => None,
        Parsed::NotHttp(_) => None,
    };
    for r in [req.as_ref(), None] {
        if let Parsed::Done(resp, n) = http::parse_response(b, r) {
            assert!(n <= b.len());
            let _ = http::response_body(&resp, r.map(|r| r.method.as_str()));
            let _ = resp.accept_ok();
            if let Some(e) = &resp.extensions {
                let _ = http::parse_deflate(e);
            }
        }
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = http::parse_deflate(s);
    }
});
