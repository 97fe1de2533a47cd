//! Mail client library behind `tidings mail` (being written).
