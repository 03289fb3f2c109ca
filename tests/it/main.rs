//! Integration tests: the real `qrlaunch` binary (and the load generator)
//! on ephemeral loopback ports, each with its own temporary directory,
//! talked to over TCP with a real HTTP client. One test binary with a
//! module per area; cases are tables where they can be.

mod acme;
mod admin;
mod browser;
mod cache;
mod console;
mod container;
mod counting;
mod domains;
mod edge;
mod faults;
mod fleet;
mod hostile;
mod layers;
mod loadtest;
mod merchants;
mod miniprogram;
mod package;
mod phones;
mod production;
mod scan;
mod store_contract;
mod support;
mod tls;
pub mod wechat;
