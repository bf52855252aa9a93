"""FHIR R4 bulk-export NDJSON -> landing contract.

Reads ``Patient``, ``MedicationAdministration``, ``Observation`` and ``Condition``
files (``<Type>.ndjson`` or ``<Type>.<n>.ndjson``, as $export writes them) from one
folder. Ketamine administrations are those coded RxNorm 6130 (or named "ketamine");
the indication is the Condition the first administration's ``reasonReference`` points
to, other ICD-10 Conditions are comorbidities. Field mapping: docs/sources.md.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.sources import codes
from pipeline.sources.landing import DeliveryError, RawTable, file_sha256

RESOURCES = ("Patient", "MedicationAdministration", "Observation", "Condition")
DOSE_TO_MG = {"mg": 1.0, "g": 1000.0, "ug": 0.001, "mcg": 0.001}


def fhir_files(folder: Path) -> dict[str, list[Path]]:
    if not folder.is_dir():
        raise DeliveryError(folder, "FHIR export folder does not exist")
    files = {
        r: sorted(folder.glob(f"{r}.ndjson")) + sorted(folder.glob(f"{r}.*.ndjson"))
        for r in RESOURCES
    }
    for required in ("Patient", "MedicationAdministration", "Observation"):
        if not files[required]:
            raise DeliveryError(folder / f"{required}.ndjson", "required file is missing")
    return files


def fhir_sha256(folder: Path) -> str:
    """Hash of the export's files, so the same export twice is skipped before parsing."""
    digest = hashlib.sha256()
    for path in sorted(p for paths in fhir_files(folder).values() for p in paths):
        digest.update(path.name.encode() + b"\0" + file_sha256(path).encode())
    return digest.hexdigest()


def read_fhir(folder: Path) -> dict[str, RawTable]:
    """Patients, ketamine treatments and pain scores from a bulk-export folder."""
    files = fhir_files(folder)
    res = {r: list(_resources(files[r], r)) for r in RESOURCES}
    conditions = {c["id"]: c for c in res["Condition"] if "id" in c}
    meds = [m for m in res["MedicationAdministration"] if _is_ketamine(m) and _done(m)]
    if not meds:
        raise DeliveryError(
            folder / "MedicationAdministration.ndjson",
            "no completed ketamine administrations (RxNorm 6130)",
        )
    weights = [o for o in res["Observation"] if _loinc(o) in codes.WEIGHT_LOINC]
    pains = [o for o in res["Observation"] if _loinc(o) in codes.PAIN_LOINC]
    frames = {
        "patients": _patients(res["Patient"], meds, conditions),
        "treatments": _treatments(meds, weights),
        "pain_assessments": pd.DataFrame(
            {
                "assessment_id": [o.get("id") for o in pains],
                "patient_id": [_ref(o.get("subject")) for o in pains],
                "assessed_at": [_iso(o.get("effectiveDateTime")) for o in pains],
                "pain_score": [_value(o) for o in pains],
            },
            dtype=object,
        ),
    }
    names = {"patients": "Patient", "treatments": "MedicationAdministration"}
    return {
        t: RawTable.from_frame(t, folder / f"{names.get(t, 'Observation')}.ndjson", f)
        for t, f in frames.items()
    }


def _resources(paths: list[Path], kind: str) -> Iterator[dict[str, Any]]:
    for path in paths:
        try:
            with path.open(encoding="utf-8") as handle:
                for number, line in enumerate(handle, start=1):
                    if not line.strip():
                        continue
                    try:
                        resource = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise DeliveryError(
                            path, f"line {number} is not valid JSON ({exc.msg})"
                        ) from exc
                    if resource.get("resourceType") != kind:
                        raise DeliveryError(path, f"line {number} is not a {kind} resource")
                    yield resource
        except UnicodeDecodeError as exc:
            raise DeliveryError(path, "is not UTF-8 encoded NDJSON") from exc
        except OSError as exc:
            raise DeliveryError(path, f"cannot be opened: {exc.strerror or exc}") from exc


def _codings(concept: dict[str, Any] | None) -> list[dict[str, Any]]:
    return (concept or {}).get("coding", [])


def _ref(reference: dict[str, Any] | None) -> str | None:
    ref = (reference or {}).get("reference")
    return ref.rsplit("/", 1)[-1] if ref else None


def _loinc(obs: dict[str, Any]) -> str | None:
    return next(
        (c.get("code") for c in _codings(obs.get("code")) if c.get("system") == codes.LOINC), None
    )


def _value(obs: dict[str, Any]) -> str | None:
    if "valueQuantity" in obs:
        return _num(obs["valueQuantity"].get("value"))
    if "valueInteger" in obs:
        return str(obs["valueInteger"])
    return None


def _iso(value: str | None) -> str | None:
    """FHIR dateTime -> the contract's ISO-8601 local form (offsets converted to UTC)."""
    if not value:
        return None
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S")


def _num(value: Any) -> str | None:
    return None if value is None else f"{float(value):g}"


def _is_ketamine(med: dict[str, Any]) -> bool:
    concept = med.get("medicationCodeableConcept") or {}
    rx = any(
        c.get("system") == codes.RXNORM and c.get("code") == codes.KETAMINE_RXNORM
        for c in _codings(concept)
    )
    text = " ".join([concept.get("text", ""), *(c.get("display", "") for c in _codings(concept))])
    return rx or "ketamine" in text.lower()


def _done(med: dict[str, Any]) -> bool:
    return med.get("status", "completed") in ("completed", "in-progress")


def _patients(patients: list[dict], meds: list[dict], conditions: dict[str, dict]) -> pd.DataFrame:
    reason: dict[str, str] = {}
    for med in sorted(meds, key=lambda m: _start(m) or ""):
        pid = _ref(med.get("subject"))
        refs = [_ref(r) for r in med.get("reasonReference", [])]
        if pid and pid not in reason and refs and refs[0] in conditions:
            reason[pid] = refs[0]
    icd: dict[str, list[tuple[str, str]]] = {}
    for cid, cond in conditions.items():
        code = next(
            (c.get("code") for c in _codings(cond.get("code")) if c.get("system") in codes.ICD10),
            None,
        )
        if code:
            icd.setdefault(_ref(cond.get("subject")) or "", []).append((cid, code))
    rows = []
    for p in patients:
        pid = p.get("id")
        own = icd.get(pid, [])
        primary = next((code for cid, code in own if cid == reason.get(pid)), None)
        others = sorted({code for cid, code in own if cid != reason.get(pid)})
        rows.append(
            {
                "patient_id": pid,
                "sex": codes.FHIR_SEX.get(p.get("gender", ""), "X"),
                "birth_year": (p.get("birthDate") or "")[:4] or None,
                "primary_condition": codes.indication(primary),
                "comorbidities": ";".join(others),
                "site_id": _ref(p.get("managingOrganization")),
            }
        )
    return pd.DataFrame(rows, dtype=object)


def _start(med: dict[str, Any]) -> str | None:
    return (med.get("effectivePeriod") or {}).get("start") or med.get("effectiveDateTime")


def _treatments(meds: list[dict], weights: list[dict]) -> pd.DataFrame:
    rows = []
    for med in meds:
        period = med.get("effectivePeriod") or {}
        dosage = med.get("dosage") or {}
        route = next(
            (
                codes.FHIR_ROUTE.get(c.get("code"))
                for c in _codings(dosage.get("route"))
                if c.get("system") == codes.SNOMED
            ),
            None,
        )
        dose = dosage.get("dose") or {}
        factor = DOSE_TO_MG.get(str(dose.get("unit", dose.get("code", ""))).lower())
        start, end = _start(med), period.get("end")
        minutes = None
        if start and end:
            minutes = (pd.Timestamp(_iso(end)) - pd.Timestamp(_iso(start))).total_seconds() / 60
        rows.append(
            {
                "treatment_id": med.get("id"),
                "patient_id": _ref(med.get("subject")),
                "administered_at": _iso(start),
                "duration_min": _num(minutes),
                "route": route or (dosage.get("route") or {}).get("text"),
                "dose_mg": _num(dose["value"] * factor) if factor and "value" in dose else None,
                "_start": pd.Timestamp(_iso(start)) if start else pd.NaT,
            }
        )
    out = pd.DataFrame(rows)
    w = pd.DataFrame(
        {
            "patient_id": [_ref(o.get("subject")) for o in weights],
            "_at": pd.to_datetime([_iso(o.get("effectiveDateTime")) for o in weights]),
            "kg": [float(o["valueQuantity"]["value"]) for o in weights],
        }
    )
    out["weight_kg"] = None
    if not w.empty:
        for i, row in out.iterrows():  # a handful of administrations per patient: not a hot path
            mine = w.loc[w.patient_id == row.patient_id].sort_values("_at")
            before = mine.loc[mine._at <= row._start] if pd.notna(row._start) else mine
            pick = before if not before.empty else mine
            out.at[i, "weight_kg"] = (
                _num(pick.kg.iloc[-1 if pick is before else 0]) if not pick.empty else None
            )
    return out.drop(columns="_start").astype(object)
