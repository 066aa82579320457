//! lmx's TFTP server (work in progress in this commit).
