"""From a transcript to a pre-filled ticket: type, category and unit, address, call-back number, due date in
working days, and the pre-fill that writes the draft."""
