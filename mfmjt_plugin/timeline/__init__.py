"""The timeline bridge: reading editors' timelines, resolving selections to media segments,
inserting Foley tracks and writing new versions (ARCHITECTURE.md, NLE.md)."""
