#![doc = include_str!("../README.md")]

pub mod command;
pub mod sandbox;
