"""Guest sharing sessions (嘉宾分享): previews, the live relay, Q&A, attendance and the summary."""
