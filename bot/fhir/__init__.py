"""The clinic bridge (HL7 FHIR R4): the roster read from the clinic's FHIR server, renewal
requests mirrored there as Tasks, decisions made in the practice software brought back.
See README, "Clinic bridge (FHIR)", and design.md for the contract. Entry point for the
running bot: bridge.py; for the CLI: setup.py (`fhir check`) and csv_roster.py."""
