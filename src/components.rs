//! The widget's views. Each is a noun with documented props; none reaches the network, the host
//! or storage itself (hooks do, and hand them signals).

mod call_panel;
mod connection_line;
mod diagnostics;
mod dial_pad;
mod header;
mod inheritance_settings;
mod notice;
mod sign_in;
mod status_menu;

pub use call_panel::CallPanel;
pub use connection_line::ConnectionLine;
pub use diagnostics::Diagnostics;
pub use dial_pad::DialPad;
pub use header::Header;
pub use inheritance_settings::InheritanceSettingsPanel;
pub use notice::Notice;
pub use sign_in::SignIn;
pub use status_menu::StatusMenu;
