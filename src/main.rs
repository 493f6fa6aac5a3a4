//! Entry point: the crash panel first (so nothing that follows can leave a white frame), then
//! the app.

fn main() {
    kustomer_adapter::crash::install();
    leptos::mount::mount_to_body(kustomer_adapter::App);
}
