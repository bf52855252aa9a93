"""Vocabulary codes the OMOP and FHIR readers map to the landing contract.

One place for the concept ids and code systems, so docs/sources.md and the readers agree.
"""

from __future__ import annotations

KETAMINE_RXNORM = "6130"  # RxNorm ingredient (RxCUI) for ketamine
PAIN_LOINC = ("72514-3", "38208-5")  # NRS 0-10 reported; pain severity reported
WEIGHT_LOINC = ("29463-7", "3141-9")  # body weight (measured)

# OMOP standard concepts
OMOP_SEX = {"8507": "M", "8532": "F"}  # anything else: X
OMOP_ROUTE = {  # SNOMED route concepts (OMOP concept_id)
    "4171047": "IV",  # Intravenous
    "4302612": "IM",  # Intramuscular
    "4262914": "IN",  # Nasal
    "4142048": "SC",  # Subcutaneous
    "4132161": "PO",  # Oral
}
OMOP_PRIMARY_DIAGNOSIS = "32902"  # condition_status_concept_id "Primary diagnosis"
OMOP_UNIT_MG, OMOP_UNIT_ML, OMOP_UNIT_POUND = "8576", "8587", "8739"

# FHIR code systems
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10 = ("http://hl7.org/fhir/sid/icd-10", "http://hl7.org/fhir/sid/icd-10-cm")
FHIR_SEX = {"female": "F", "male": "M"}  # other / unknown: X
FHIR_ROUTE = {  # SNOMED route of administration
    "47625008": "IV",
    "78421000": "IM",
    "46713006": "IN",
    "34206005": "SC",
    "26643006": "PO",
}

# ICD-10 code prefixes of the indications relief analyses, longest prefix wins.
INDICATIONS = {
    "G90.5": "CRPS",
    "M79.7": "fibromyalgia",
    "M79.2": "neuropathic",
    "G62": "neuropathic",
    "G63": "neuropathic",
    "G43": "migraine",
    "M54.5": "low_back_pain",
}


def indication(icd10: str | None) -> str | None:
    """The contract's primary_condition for an ICD-10 code (the code itself if unmapped)."""
    if not icd10:
        return None
    for prefix in sorted(INDICATIONS, key=len, reverse=True):
        if icd10.upper().startswith(prefix):
            return INDICATIONS[prefix]
    return icd10
