//! See `lakehouse_fuzz::extended`.
#![no_main]

lakehouse_fuzz::target!(extended);
