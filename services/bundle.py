"""Services: one object bundling every backend's service, opened and closed together,
and the list of probes the doctor and the header badges share."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from services.alerts import AlertsService
from services.audit import AuditService
from services.backups import BackupsService
from services.checklists import ChecklistService
from services.claims import ClaimsService
from services.dbcare import DbCareService
from services.health import BotHealthService, Probe
from services.incidents import IncidentsService
from services.kube import KubeService
from services.metrics import MetricsService
from services.nodes import NodesService
from services.orders import OrdersService
from services.overview import OverviewService
from services.panel import PanelService
from services.payments import PaymentsService
from services.postgres import PostgresService
from services.pricing import PricingService
from services.provisioner import ProvisionerService
from services.reconcile import ReconcileService
from services.saves import SavesService
from services.storage import StorageService


@dataclass
class Services:
    postgres: PostgresService
    kube: KubeService
    metrics: MetricsService
    payments: PaymentsService
    storage: StorageService
    panel: PanelService
    provisioner: ProvisionerService
    bot: BotHealthService
    overview: OverviewService
    orders: OrdersService
    nodes: NodesService
    alerts: AlertsService
    incidents: IncidentsService
    audit: AuditService
    claims: ClaimsService
    dbcare: DbCareService
    backups: BackupsService
    saves: SavesService
    pricing: PricingService
    # The payments area's reads (Stripe, Prometheus and PostgreSQL together): set by the wiring.
    reconcile: ReconcileService = field(init=False)
    checklists: ChecklistService = field(init=False)  # reads every other service: set by the wiring

    async def open(self) -> None:
        """Prepare what needs preparing; never fails because a backend is down."""
        await self.postgres.open()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.postgres.close(), 5)

    def probes(self) -> list[Probe]:
        """Every backend, in the order the header and the doctor show them."""
        m = self.metrics
        return [
            Probe(
                "postgres", "pg", self.postgres.configured, "set DATABASE_URL or DB_HOST", self.postgres.ping
            ),
            Probe("kube", "k8s", self.kube.configured, "set KUBECONFIG", self.kube.ping),
            Probe("prometheus", "prom", bool(m.prometheus_url), "set PROMETHEUS_URL", m.ping_prometheus),
            Probe(
                "alertmanager", "am", bool(m.alertmanager_url), "set ALERTMANAGER_URL", m.ping_alertmanager
            ),
            Probe("stripe", "stripe", self.payments.configured, "set STRIPE_SECRET_KEY", self.payments.ping),
            Probe("s3", "s3", self.storage.configured, "set S3_ENDPOINT and S3_BUCKET", self.storage.ping),
            Probe(
                "panel", "panel", self.panel.configured, "set PANEL_URL and PTERO_APP_KEY", self.panel.ping
            ),
            Probe(
                "provisioner",
                "prov",
                self.provisioner.configured,
                "set PROVISIONER_URL",
                self.provisioner.ping,
            ),
            Probe("bot", "bot", self.bot.configured, "set OPSCONSOLE_BOT_URL", self.bot.ping),
        ]
