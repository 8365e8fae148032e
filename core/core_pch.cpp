// Anchors jslds_core so that it exists before any subfolder adds sources.
