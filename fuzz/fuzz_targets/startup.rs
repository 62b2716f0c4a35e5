//! See `lakehouse_fuzz::startup`.
#![no_main]

lakehouse_fuzz::target!(startup);
