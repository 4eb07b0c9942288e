"""The worker's signal processing: audio files, analysis and mastering (docs/ai.md).

Heavy (numpy, scipy, librosa, torch; the `ai` extra): only the worker imports this package, never
the server (an import-linter contract keeps it so). The entry points are
`jacameno.ai.audio.read` / `write`, `jacameno.ai.analysis.analyse` and
`jacameno.ai.mastering.master`; every function takes samples as a float array shaped
(channels, frames) and a sample rate, and none does I/O but `audio.read` and `audio.write`."""
