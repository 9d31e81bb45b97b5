"""Google Analytics 4 (Measurement Protocol): a batched analytics destination."""
