//! guard.rs: a guest of the conduit ABI in Rust (wasm32-unknown-unknown, no_std, no
//! allocator). Requests under /admin are answered 403 by the guest; every other request
//! goes on with the header x-rust-path carrying its path. Build: `make wasm-guests`
//! (plugins/wasm/Makefile), which runs
//! rustc --edition 2021 --target wasm32-unknown-unknown --crate-type cdylib
//!       -C opt-level=s -C panic=abort -C strip=symbols -o guard.wasm guard.rs
#![no_std]

#[link(wasm_import_module = "conduit")]
extern "C" {
    fn conduit_get_path(buf: *mut u8, len: i32) -> i32;
    fn conduit_set_request_header(name: *const u8, name_len: i32, value: *const u8, value_len: i32);
    fn conduit_set_response_status(status: i32);
    fn conduit_set_response_body(body: *const u8, body_len: i32);
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}

const CAP: usize = 2048;
static mut PATH: [u8; CAP] = [0; CAP];

#[no_mangle]
pub extern "C" fn on_request() -> i32 {
    unsafe {
        let n = conduit_get_path(PATH.as_mut_ptr(), CAP as i32);
        if n < 0 {
            return 0;
        }
        let path = &PATH[..n as usize];
        if path.starts_with(b"/admin") {
            let body = b"forbidden by the rust guest";
            conduit_set_response_status(403);
            conduit_set_response_body(body.as_ptr(), body.len() as i32);
            return 1;
        }
        let name = b"x-rust-path";
        conduit_set_request_header(name.as_ptr(), name.len() as i32, path.as_ptr(), n);
    }
    0
}
