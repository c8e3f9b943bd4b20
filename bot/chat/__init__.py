"""The chat core every platform shares: neutral messages, the inbound pipeline, the bilingual
command router, permissions and the notifier (DESIGN.md §2)."""
