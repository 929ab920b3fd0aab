//! The end-to-end tests, by area.

mod admission;
mod client_api;
mod connections;
mod crash;
mod delivery;
mod devnet;
mod fairness;
mod fleet_page;
mod fleet_scale;
mod frames;
mod identity;
mod partition;
