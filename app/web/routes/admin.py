"""/admin: provision robots and their tokens, create operator keys, rotate, revoke and list (admin scope)."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar import Controller, delete, get, post
from litestar.params import JSONBody, PathParameter, QueryParameter

from app.auth import provisioning as admin
from app.fleet.decommission import decommission_robot
from app.model.errors import ErrorKind
from app.model.payloads import CredentialInfo, IssuedCredential
from app.model.principal import Scope
from app.web.deps import AuthenticatorDep, PoolDep, SettingsDep
from app.web.guard import SCOPE_OPT
from app.web.params import RobotIdPath
from app.web.paths import robot_id_from_path
from app.web.problems import AUTH_ERRORS, problem_responses

CredentialIdPath = Annotated[int, PathParameter(description="The credential's id (from the listing).")]


class AdminController(Controller):
    path = "/admin"
    tags = ["admin"]  # noqa: RUF012 - Litestar reads this class attribute
    opt = {SCOPE_OPT: Scope.ADMIN}  # noqa: RUF012

    @post(
        "/robots",
        operation_id="provisionRobot",
        status_code=201,
        responses=problem_responses(ErrorKind.MALFORMED_BODY, ErrorKind.CONFLICT, *AUTH_ERRORS),
        summary="Provision a robot and issue its token (shown once)",
        description="A robot that reported before (with authentication off) keeps its history. A robot that "
        "still has a working token gives 409: rotate its token, or decommission it first.",
    )
    async def provision_robot(
        self, pool: PoolDep, authenticator: AuthenticatorDep, data: JSONBody[admin.NewRobot]
    ) -> IssuedCredential:
        issued = await admin.provision_robot(pool, data)
        authenticator.provisioned()
        return issued

    @delete(
        "/robots/{robot_id:str}",
        operation_id="decommissionRobot",
        responses=problem_responses(ErrorKind.UNKNOWN_ROBOT, ErrorKind.BAD_PARAMETER, *AUTH_ERRORS),
        summary="Decommission a robot",
        description="Revokes its tokens (every API process within FLEET_AUTH_POLL_MS, its open connections "
        "closed), resolves its open alerts (`robot decommissioned`) and takes it out of the fleet's latest state. "
        "`history=keep` (the default) keeps its readings and alerts readable; `history=delete` deletes them.",
    )
    async def decommission_robot(
        self,
        pool: PoolDep,
        authenticator: AuthenticatorDep,
        robot_id: RobotIdPath,
        history: Annotated[
            Literal["keep", "delete"], QueryParameter(description="keep (the default) or delete its readings.")
        ] = "keep",
    ) -> None:
        await decommission_robot(pool, robot_id_from_path(robot_id), history == "delete")
        authenticator.forget()

    @post(
        "/robots/{robot_id:str}/tokens",
        operation_id="rotateRobotToken",
        status_code=201,
        responses=problem_responses(ErrorKind.UNKNOWN_ROBOT, *AUTH_ERRORS),
        summary="Rotate a robot's token",
        description="Issues a new token; the robot's current tokens keep working until `expires_previous_at` "
        "(FLEET_ROTATION_GRACE_S), so both work while the robot switches over.",
    )
    async def rotate_robot_token(
        self, pool: PoolDep, settings: SettingsDep, authenticator: AuthenticatorDep, robot_id: RobotIdPath
    ) -> IssuedCredential:
        issued = await admin.rotate_robot_token(pool, robot_id_from_path(robot_id), settings.auth.rotation_grace_s)
        authenticator.forget()
        return issued

    @post(
        "/keys",
        operation_id="createKey",
        status_code=201,
        responses=problem_responses(ErrorKind.MALFORMED_BODY, *AUTH_ERRORS),
        summary="Create an operator key (shown once)",
        description="Scopes: read, stream, export, ingest, admin. `robot_ids` or `fleet_tag` limit the key to "
        "those robots; listings then show only them.",
    )
    async def create_key(self, pool: PoolDep, data: JSONBody[admin.NewKey]) -> IssuedCredential:
        return await admin.create_key(pool, data)

    @get(
        "/credentials",
        operation_id="listCredentials",
        responses=problem_responses(*AUTH_ERRORS),
        summary="Every credential, without secrets",
    )
    async def list_credentials(self, pool: PoolDep) -> list[CredentialInfo]:
        return await admin.list_credentials(pool)

    @delete(
        "/credentials/{credential_id:int}",
        operation_id="revokeCredential",
        responses=problem_responses(*AUTH_ERRORS),
        summary="Revoke a credential",
        description="Takes effect in every API process within FLEET_AUTH_POLL_MS.",
    )
    async def revoke_credential(
        self, pool: PoolDep, authenticator: AuthenticatorDep, credential_id: CredentialIdPath
    ) -> None:
        await admin.revoke(pool, credential_id)
        authenticator.forget()
