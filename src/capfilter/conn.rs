//! `--conn` selectors (to do).
