"""Generated Open Inference Protocol modules (``make protos``); see NOTICE."""
