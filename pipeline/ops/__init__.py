"""Operations: what an on-call engineer uses to find an event, read its trace and replay it.

Search and trace (`search`, `trace`), bulk replay as plan then execute (`replays`), destination
levers (`destinations`), the audit log (`audit`) and the admin API's tokens (`auth`). The admin
API (`receivers.api`) and the CLI (`pipeline.cli`) are two faces of these functions.
"""
