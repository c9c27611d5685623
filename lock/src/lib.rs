//! Porta reference lock (work in progress).
