// Placeholder translation unit until this library has real sources; delete when it does.
