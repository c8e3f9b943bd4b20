"""Chat platform edges (Slack, Feishu/Lark, DingTalk, console), one package per platform."""
