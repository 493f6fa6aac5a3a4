//! Entry point of the admins' settings page: the crash panel first, then the page.

fn main() {
    kustomer_adapter::crash::install();
    leptos::mount::mount_to_body(kustomer_adapter::settings_page::SettingsApp);
}
