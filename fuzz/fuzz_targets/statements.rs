//! See `lakehouse_fuzz::statements`.
#![no_main]

lakehouse_fuzz::target!(statements);
