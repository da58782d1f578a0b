//! The C embedding API (see include/sockmeter.h). Filled in by the embedding work.
