"""Who may see what (DESIGN.md §3 Access): every answer is computed under the asker's rights.

admin: everything. manager: the teams they manage, their people, and their direct reports.
member: their own numbers and their team's aggregates; in rankings, other people's places and
names but not their values unless `organisation.ranking_for_members` is "values" ("own" shows
only their own line).
"""

from __future__ import annotations

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
            return person.team in self.managed_teams(asker) or person.manager == asker.id
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
