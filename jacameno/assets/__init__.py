"""Audio assets: uploads to a project, stored by content (jacameno.storage) and recorded on the
project's stream (domain.events.assets). See docs/assets.md."""
