//! The widget's views. Each is a noun with documented props; none reaches the network or
//! storage itself (hooks do, and hand them signals).

mod connection_line;
mod header;
mod notice;

pub use connection_line::ConnectionLine;
pub use header::Header;
pub use notice::Notice;
