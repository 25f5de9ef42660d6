"""The audit trail (等保 安全审计): security-relevant acts, append-only and chained (`trail`)."""
