//! A catalogue that changes at run time: tools, resources and prompts that the server does not
//! know when it is built, and whose calls are forwarded elsewhere (the gateway's upstreams).
//!
//! A server built with [`crate::ServerBuilder::catalogue`] asks its [`Catalogue`] for every list
//! and hands it every `tools/call`, `resources/read`, `prompts/get` and `completion/complete`.
//! When the catalogue changes, [`crate::Server::notify_list_changed`] tells the clients: legacy
//! sessions get `notifications/*/list_changed` unasked (stdio on stdout, HTTP on the session's
//! `GET /mcp` stream), and 2026-07-28 clients on the `subscriptions/listen` stream they opened.
//!
//! Servers with a static registry pay nothing for this: their lists are still encoded once at
//! build time, and their calls never look at the catalogue.

use futures::future::BoxFuture;
use serde_json::{Map, Value};

use crate::{
    context::RequestContext, error::HandlerError, server::CompletionRequest, tasks::TaskStart,
};

/// Pending list-change notices per listener before the oldest are dropped (a listener that
/// falls behind is told that every list changed).
pub const LIST_CHANGES_QUEUE: usize = 64;

/// One of the lists a client can be told has changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListKind {
    /// `tools/list`.
    Tools,
    /// `resources/list` and `resources/templates/list`.
    Resources,
    /// `prompts/list`.
    Prompts,
}

impl ListKind {
    pub const ALL: [ListKind; 3] = [ListKind::Tools, ListKind::Resources, ListKind::Prompts];

    /// The notification that announces a change of this list.
    pub fn notification(self) -> &'static str {
        match self {
            ListKind::Tools => "notifications/tools/list_changed",
            ListKind::Resources => "notifications/resources/list_changed",
            ListKind::Prompts => "notifications/prompts/list_changed",
        }
    }

    /// The key of this list in a `subscriptions/listen` filter.
    pub(crate) fn filter_key(self) -> &'static str {
        match self {
            ListKind::Tools => "toolsListChanged",
            ListKind::Resources => "resourcesListChanged",
            ListKind::Prompts => "promptsListChanged",
        }
    }
}

/// Which list a list request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListRequest {
    Tools,
    Resources,
    ResourceTemplates,
    Prompts,
}

impl ListRequest {
    /// The key of the items in the result object (`{"tools": [...]}`).
    pub(crate) fn result_key(self) -> &'static str {
        match self {
            ListRequest::Tools => "tools",
            ListRequest::Resources => "resources",
            ListRequest::ResourceTemplates => "resourceTemplates",
            ListRequest::Prompts => "prompts",
        }
    }

    pub(crate) fn from_method(method: &str) -> Option<Self> {
        Some(match method {
            "tools/list" => ListRequest::Tools,
            "resources/list" => ListRequest::Resources,
            "resources/templates/list" => ListRequest::ResourceTemplates,
            "prompts/list" => ListRequest::Prompts,
            _ => return None,
        })
    }
}

/// The result of a forwarded call, as a JSON object (`CallToolResult`, `ReadResourceResult`,
/// `GetPromptResult`); the kit adds `resultType` and cache hints for 2026-07-28 clients.
pub type CatalogueResult = BoxFuture<'static, Result<Map<String, Value>, HandlerError>>;

/// A catalogue served by a [`crate::Server`]: it lists the items and answers the calls.
///
/// Every method gets the request's [`RequestContext`]: progress, logs and cancellation work as
/// for static handlers, and [`RequestContext::caller`] says who is calling (the HTTP front sets
/// it). Items are passed as wire JSON, unchanged: the catalogue owns their shape.
pub trait Catalogue: Send + Sync + 'static {
    /// The items of one list, each a wire object (`Tool`, `Resource`, `ResourceTemplate`,
    /// `Prompt`). All items come in one page.
    fn list(
        &self,
        list: ListRequest,
        cx: RequestContext,
    ) -> BoxFuture<'static, Result<Vec<Value>, HandlerError>>;

    /// Call a tool. An unknown tool is [`HandlerError::NotFound`]; a tool that ran and failed
    /// is a result with `isError: true`.
    fn call_tool(
        &self,
        name: String,
        arguments: Map<String, Value>,
        cx: RequestContext,
    ) -> CatalogueResult;

    /// Read a resource.
    fn read_resource(&self, uri: String, cx: RequestContext) -> CatalogueResult;

    /// Get a prompt.
    fn get_prompt(
        &self,
        name: String,
        arguments: Map<String, Value>,
        cx: RequestContext,
    ) -> CatalogueResult;

    /// A client subscribed to `uri`, on a server built with
    /// [`crate::ServerBuilder::resource_subscriptions`]: a legacy session's
    /// `resources/subscribe`, or one of the `resourceSubscriptions` of a 2026-07-28
    /// `subscriptions/listen`. Once this accepts, the subscriber hears
    /// [`crate::Server::notify_resource_updated`] for `uri`. An error is the `resources/subscribe`
    /// answer; a listen stream leaves the resource out of its acknowledgement.
    ///
    /// Every accepted subscription is paired with one [`Catalogue::unsubscribe`]: when the
    /// client unsubscribes, or else when its session ends or its listen stream closes. So a
    /// catalogue may count subscribers per resource.
    /// Whether and when calls of `tool` become tasks (the 2026-07-28 tasks extension), for a
    /// client that declared the extension:
    ///
    /// - [`TaskStart::Upfront`]: the kit answers with a task at once and runs
    ///   [`Self::call_tool`] in the background, where [`RequestContext::input`] goes through
    ///   the task;
    /// - [`TaskStart::InHandler`]: [`Self::call_tool`] runs as a plain call (it may ask for
    ///   input in 2026-07-28 rounds) until it calls [`RequestContext::start_task`]; if it
    ///   never does, the call is answered plainly.
    ///
    /// `None` (the default): the tool runs as a plain call. A catalogue that runs tasks must
    /// also answer `true` to [`Self::runs_tasks`]; this is asked only when it does and the
    /// client declared the extension.
    fn task_start(
        &self,
        tool: String,
        cx: RequestContext,
    ) -> BoxFuture<'static, Option<TaskStart>> {
        let _ = (tool, cx);
        Box::pin(async { None })
    }

    /// Whether the server takes part in the tasks extension at all: it advertises it and
    /// answers `tasks/get`, `tasks/update` and `tasks/cancel`. Default `false`.
    fn runs_tasks(&self) -> bool {
        false
    }

    fn subscribe(
        &self,
        uri: String,
        cx: RequestContext,
    ) -> BoxFuture<'static, Result<(), HandlerError>> {
        let _ = (uri, cx);
        Box::pin(async { Ok(()) })
    }

    /// A subscriber of `uri` that [`Catalogue::subscribe`] accepted left: it unsubscribed, its
    /// session ended or its listen stream closed. The default accepts.
    fn unsubscribe(
        &self,
        uri: String,
        cx: RequestContext,
    ) -> BoxFuture<'static, Result<(), HandlerError>> {
        let _ = (uri, cx);
        Box::pin(async { Ok(()) })
    }

    /// Complete an argument of a prompt or resource template: the candidate values. The
    /// default completes nothing.
    fn complete(
        &self,
        request: CompletionRequest,
        cx: RequestContext,
    ) -> BoxFuture<'static, Result<Vec<String>, HandlerError>> {
        let _ = (request, cx);
        Box::pin(async { Ok(Vec::new()) })
    }
}
