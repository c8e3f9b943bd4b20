"""The one access policy: who may see which numbers, who may act on what, whom an escalation
reaches, and what a group may be shown (DESIGN.md §3 Access). Chat, cards, digests, alerts,
appeals and the dashboard all ask here.

- admin: everything. manager: the teams they manage, their people, and their direct reports.
  member: their own numbers and their team's aggregates; in rankings, other people's places
  and names but not their values unless `organisation.ranking_for_members` is "values"
  ("own" shows only their own line).
- A person's management chain is their manager (else their team's), that one's manager, and
  so on, ending at the first admin: an escalation never climbs past an admin into another
  team, and nobody outside the chain sees the person's numbers through it.
- A group is shown only what every member of its team may see.
"""

from __future__ import annotations

from collections.abc import Iterable

from kpi_engine.organisation import Organisation, PersonConfig
from kpi_engine.scopes import Scope


class Access:
    """Permission checks for one organisation."""

    def __init__(self, organisation: Organisation) -> None:
        self.organisation = organisation

    def managed_teams(self, person: PersonConfig) -> set[str]:
        """The teams whose numbers `person` may see in full."""
        teams = self.organisation.teams
        if person.role == "admin":
            return set(teams)
        if person.role == "manager":
            return {t.id for t in teams.values() if t.manager == person.id} | {person.team}
        return set()

    def can_see(self, asker: PersonConfig, scope: Scope) -> bool:
        """May `asker` see `scope`'s numbers?"""
        if asker.role == "admin":
            return True
        org = self.organisation
        if scope.kind == "company":
            return False
        if scope.kind == "person":
            if scope.id == asker.id:
                return True
            person = org.people.get(scope.id)
            if person is None:
                return False
            return person.team in self.managed_teams(asker) or asker in self.chain(person)
        if scope.kind == "team":
            return scope.id == asker.team or scope.id in self.managed_teams(asker)
        shop = org.shops.get(scope.id)
        if shop is None:
            return False
        return shop.team == asker.team or shop.team in self.managed_teams(asker)

    def ranking_values(self, asker: PersonConfig, team: str) -> str:
        """How much of a team ranking `asker` sees: "values", "names" or "own"."""
        if asker.role == "admin" or team in self.managed_teams(asker):
            return "values"
        return self.organisation.settings.ranking_for_members

    def default_scope(self, asker: PersonConfig) -> Scope:
        """Whom a question names nobody is about: an admin's the company, a manager's their
        team, anyone else's themselves."""
        if asker.role == "admin":
            return Scope("company")
        if asker.role == "manager":
            managed = [t.id for t in self.organisation.teams.values() if t.manager == asker.id]
            return Scope("team", managed[0] if managed else asker.team)
        return Scope("person", asker.id)

    def chain(self, person: PersonConfig) -> list[PersonConfig]:
        """The person's managers, nearest first, ending at the first admin."""
        org = self.organisation
        found: list[PersonConfig] = []
        current = person
        while current.role != "admin" or current is person:
            boss_id = current.manager or org.teams[current.team].manager
            if not boss_id or boss_id not in org.people:
                break
            boss = org.people[boss_id]
            if boss.id == person.id or boss in found:
                break  # a cycle in the configuration
            found.append(boss)
            if boss.role == "admin":
                break
            current = boss
        if not found or found[-1].role != "admin":
            admins = [p for p in org.people.values() if p.role == "admin" and p not in found]
            if admins and person.role != "admin":
                found.append(admins[0])  # every chain ends with an admin
        return found

    def may_act_for(self, person: PersonConfig, owners: Iterable[PersonConfig]) -> bool:
        """May `person` act on what `owners` answer for (an alert, an appeal's review)? The
        owners themselves, their chains, and admins."""
        if person.role == "admin":
            return True
        return any(person.id == o.id or person in self.chain(o) for o in owners)

    def audience(self, team: str) -> list[PersonConfig]:
        """Who reads a team's group: its members."""
        return [p for p in self.organisation.people.values() if p.team == team]

    def group_may_see(self, team: str, scope: Scope) -> bool:
        """May everyone in the team's group see `scope`'s numbers?"""
        return all(self.can_see(member, scope) for member in self.audience(team))

    def team_of_channel(self, platform: str, channel: str) -> str | None:
        """The team whose group `channel` is on `platform`, if it is one (the console names a
        team's channel `team:<id>`)."""
        for team in self.organisation.teams.values():
            if channel and team.channels.get(platform) == channel:
                return team.id
        if platform == "console" and channel.startswith("team:"):
            team_id = channel.removeprefix("team:")
            return team_id if team_id in self.organisation.teams else None
        return None
