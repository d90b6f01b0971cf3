"""Voucher bodies: definitions (admin), code uploads, and a member's vouchers."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field, StrictBool, ValidationInfo, computed_field, field_validator, model_validator

from app.kit.schemas import FieldError, ProgramTime, WriteModel

KEY_PATTERN = r"^[a-z0-9][a-z0-9_\-]{0,63}$"
MAX_CODES = 10_000
Code = str


def _clean_codes(codes: list[str]) -> list[str]:
    out: list[str] = []
    for i, raw in enumerate(codes):
        code = raw.strip()
        if not code or len(code) > 64:
            raise ValueError(f"code {i} must be 1-64 characters")
        out.append(code)
    return out


class VoucherCreate(WriteModel):
    key: str = Field(pattern=KEY_PATTERN)
    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=5000)
    face_value: Decimal = Field(default=Decimal(0), ge=0, max_digits=12, decimal_places=2)
    validity_days: int | None = Field(default=None, ge=1, le=3650)  # true: refused by WriteModel
    codes: list[str] = Field(default_factory=list, max_length=MAX_CODES)
    generated: StrictBool = Field(default=False, validate_default=True)

    @field_validator("codes")
    @classmethod
    def _codes(cls, v: list[str]) -> list[str]:
        return _clean_codes(v)

    @field_validator("generated")
    @classmethod
    def _pool_or_generated(cls, v: bool, info: ValidationInfo) -> bool:
        if v and info.data.get("codes"):
            raise ValueError("a voucher has either an uploaded pool of codes or generated codes, not both")
        return v


class VoucherReplace(WriteModel):
    key: str | None = Field(default=None, pattern=KEY_PATTERN)
    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=5000)
    face_value: Decimal = Field(default=Decimal(0), ge=0, max_digits=12, decimal_places=2)
    validity_days: int | None = Field(default=None, ge=1, le=3650)  # true: refused by WriteModel
    generated: StrictBool = False


class VoucherUpdate(WriteModel):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=5000)
    face_value: Decimal | None = Field(default=None, ge=0, max_digits=12, decimal_places=2)
    validity_days: int | None = Field(default=None, ge=1, le=3650)  # true: refused by WriteModel
    generated: StrictBool | None = None

    @model_validator(mode="after")
    def _no_nulls(self) -> VoucherUpdate:
        """A field sent as null is refused, not skipped (a 200 that changed nothing hid the mistake); only
        `validity_days` can be cleared with null (no expiry)."""
        for name in ("name", "description", "face_value", "generated"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise FieldError(name, f"{name} cannot be null; leave it out to keep it")
        return self


class CodesIn(WriteModel):
    codes: list[str] = Field(min_length=1, max_length=MAX_CODES)

    @field_validator("codes")
    @classmethod
    def _codes(cls, v: list[str]) -> list[str]:
        return _clean_codes(v)


class VoucherOut(BaseModel):
    key: str
    name: str
    description: str
    face_value: float
    validity_days: int | None
    generated: bool
    codes_total: int
    codes_available: int | None
    issued_count: int
    pending_count: int
    warning: Literal["voucher_pool_exhausted"] | None
    created_at: ProgramTime
    updated_at: ProgramTime


class CodesResult(BaseModel):
    added: int
    duplicates: int
    fulfilled: int
    codes_available: int | None
    pending_count: int
    warning: Literal["voucher_pool_exhausted"] | None


class MemberVoucherOut(BaseModel):
    id: int
    voucher: str = Field(description="The voucher definition's key")
    name: str
    description: str
    face_value: float
    code: str | None
    status: Literal["pending", "issued", "expired"]
    issued_at: ProgramTime | None
    expires_at: ProgramTime | None
    created_at: ProgramTime
    source_type: str
    source_id: str

    @computed_field(description="The voucher definition's key (the same as voucher)")
    def key(self) -> str:
        return self.voucher


VoucherReplace.echoes = VoucherOut  # a PUT takes back what a GET returned (see WriteModel.echoes)
