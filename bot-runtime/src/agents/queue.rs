//! Sans-IO queue engine (being written).
