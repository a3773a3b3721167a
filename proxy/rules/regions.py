"""Where a recipient is: region (for tracking rules) and footer language, from rules/regions.yaml."""

from __future__ import annotations

from dataclasses import dataclass, field

from proxy.addresses import top_level_domain


@dataclass(frozen=True)
class RegionRules:
    default_region: str = "eu"
    regions: dict[str, tuple[str, ...]] = field(default_factory=dict)
    no_tracking_without_consent: tuple[str, ...] = ("eu",)
    languages: dict[str, str] = field(default_factory=dict)

    def check(self) -> list[tuple[str, str]]:
        problems = []
        seen: dict[str, str] = {}
        for region, tlds in self.regions.items():
            for tld in tlds:
                if tld in seen:
                    problems.append((f"regions.{region}", f"TLD {tld!r} is already in region {seen[tld]!r}"))
                seen[tld] = region
        known = set(self.regions) | {self.default_region}
        for name in self.no_tracking_without_consent:
            if name not in known:
                problems.append(("no_tracking_without_consent", f"unknown region {name!r}"))
        for tld, language in self.languages.items():
            if len(language) != 2 or not language.isalpha() or not language.islower():
                problems.append((f"languages.{tld}", f"{language!r} is not a two-letter ISO 639-1 code"))
        return problems

    def _tld_regions(self) -> dict[str, str]:
        cached: dict[str, str] | None = self.__dict__.get("_by_tld")
        if cached is None:
            cached = {tld: region for region, tlds in self.regions.items() for tld in tlds}
            object.__setattr__(self, "_by_tld", cached)
        return cached

    def region_for(self, domain: str, country: str | None = None) -> str:
        """The recipient's region: recorded country first, then the domain's TLD, then the default."""
        by_tld = self._tld_regions()
        if country and country.lower() in by_tld:
            return by_tld[country.lower()]
        return by_tld.get(top_level_domain(domain), self.default_region)

    def tracking_needs_consent(self, region: str) -> bool:
        return region in self.no_tracking_without_consent

    def language_for(self, domain: str) -> str | None:
        return self.languages.get(top_level_domain(domain))
