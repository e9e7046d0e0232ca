"""The practitioner desk: one Space and one desk room per practitioner, the cross-room inbox,
turnaround (digest, reminders in business days) and absences.

Pure parts live here (no Matrix, no store imports): the runtime wires them to rooms and tables.
"""
