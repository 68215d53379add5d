//! assent's PingFederate-style Authentication API.
