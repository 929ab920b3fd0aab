//! The end-to-end tests, by area.

mod admission;
mod client_api;
mod delivery;
mod devnet;
mod frames;
mod identity;
