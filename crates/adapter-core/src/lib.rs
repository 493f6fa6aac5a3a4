//! The adapter's pure core: domain logic with no I/O, shared by the widget (wasm32) and the
//! gateway (native), and tested natively.
//!
//! - [`lang`]: which of the supported languages to speak, from the host's or browser's preferences.
//! - [`backoff`]: retry delays for anything that talks over a network.
//! - [`connection`]: the state of the widget's link to the gateway.
//! - [`health`]: the gateway's `/healthz` wire type.

pub mod backoff;
pub mod connection;
pub mod health;
pub mod lang;
