"""Vouchers: reward definitions, code pools and the vouchers members hold."""
