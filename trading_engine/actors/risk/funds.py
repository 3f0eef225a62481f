"""Users and funds: the ``$accounts`` stream, which this actor alone writes.

A new user, a deposit and a withdrawal are applied when requested (so two
withdrawals can never both spend the same funds), then written to
``$accounts``; the reply waits for the write. ``_apply_account`` applies
that stream's events on replay, margin's own (``MarginSettled``,
``Liquidated``) through ``margin.py``, the dead man's switches' through
``switches.py``.

A mixin over ``MarginMixin`` and ``SwitchesMixin`` (for those events).
"""

from __future__ import annotations

import time
from typing import assert_never

from trading_engine.actors.messages import CreateUser, MoveFunds, Refused, SetCredential
from trading_engine.actors.risk.margin import MarginMixin
from trading_engine.actors.risk.switches import SwitchesMixin
from trading_engine.core.account_events import (
    AccountsStreamEvent,
    CancelAllAfterFired,
    CancelAllAfterSet,
    CredentialSet,
    Deposited,
    Liquidated,
    MarginSettled,
    UserCreated,
    Withdrawn,
)
from trading_engine.core.ids import UserId
from trading_engine.errors import InvalidInput

__all__ = ["FundsMixin"]


class FundsMixin(MarginMixin, SwitchesMixin):
    """Users, deposits and withdrawals, and the events of ``$accounts``."""

    def _move_funds(self, message: MoveFunds) -> None:
        if message.amount <= 0:
            message.reply.fail(InvalidInput("amount", "must be positive"))
            return
        if message.user_id not in self.users:
            message.reply.send(Refused("unknown_user", f"no user {message.user_id}"))
            return
        if message.withdraw and not self.accounts.can_withdraw(
            message.user_id, message.asset, message.amount
        ):
            message.reply.send(
                Refused("insufficient_funds", "amount exceeds the available balance")
            )
            return
        self.accounts_seq += 1
        kind = Withdrawn if message.withdraw else Deposited
        event = kind(
            self.accounts_seq, time.time_ns(), message.user_id, message.asset, message.amount
        )
        self._apply_account(event)
        self._account_events.append(event)
        balance = self.accounts.balance(message.user_id, message.asset)
        self._account_replies.append((message.reply, balance))

    def _create_user(self, message: CreateUser) -> None:
        if message.user_id in self.users:
            message.reply.send(Refused("user_exists", f"user {message.user_id} exists"))
            return
        if message.owner is not None and message.owner not in self.users:
            message.reply.send(Refused("unknown_owner", f"no user {message.owner}"))
            return
        self.accounts_seq += 1
        event = UserCreated(
            self.accounts_seq, time.time_ns(), message.user_id, message.owner, message.api_key_hash
        )
        self._apply_account(event)
        self._account_events.append(event)
        for scheme, credential in message.credentials:
            self._journal_credential(message.user_id, scheme, credential)
        self._account_replies.append((message.reply, None))

    def _set_credential(self, message: SetCredential) -> None:
        if message.user_id not in self.users:
            message.reply.send(Refused("unknown_user", f"no user {message.user_id}"))
            return
        self._journal_credential(message.user_id, message.scheme, message.credential)
        self._account_replies.append((message.reply, None))

    def _journal_credential(self, user_id: UserId, scheme: str, credential: str) -> None:
        self.accounts_seq += 1
        event = CredentialSet(self.accounts_seq, time.time_ns(), user_id, scheme, credential)
        self._apply_account(event)
        self._account_events.append(event)

    def _apply_account(self, event: AccountsStreamEvent) -> None:
        match event:
            case UserCreated(user_id=user_id, owner=owner, api_key_hash=key_hash):
                self.users[user_id] = owner
                self.keys[key_hash] = user_id
            case CredentialSet(user_id=user_id, scheme=scheme, credential=credential):
                self.credentials.setdefault(user_id, {})[scheme] = credential
            case Deposited(user_id=user_id, asset=asset, amount=amount):
                self.accounts.credit(user_id, asset, amount)
            case Withdrawn(user_id=user_id, asset=asset, amount=amount):
                self.accounts.credit(user_id, asset, -amount)
            case MarginSettled():
                self._apply_margin_settled(event)
            case Liquidated():
                self._apply_liquidated(event)
            case CancelAllAfterSet() | CancelAllAfterFired():
                self._apply_switch(event)
            case _:
                assert_never(event)
