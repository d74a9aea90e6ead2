//! The attribute macros of procpool, re-exported by it: see
//! `procpool::task`, `procpool::initializer` and `procpool::main` for their documentation and
//! examples (they need the `procpool` crate to expand into).

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote};
use syn::parse::Parser;
use syn::spanned::Spanned;
use syn::{FnArg, GenericArgument, ItemFn, LitStr, PathArguments, ReturnType, Type};

/// Turns a plain function into a task: a unit value of the function's name
/// that `Pool::map` and the rest take, registered at link time under its
/// module path and name (or `name = "..."`).
#[proc_macro_attribute]
pub fn task(attr: TokenStream, item: TokenStream) -> TokenStream {
    let function = syn::parse_macro_input!(item as ItemFn);
    expand_task(attr.into(), function)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Turns a plain function into an initializer: a unit value of the
/// function's name that `PoolBuilder::initializer` takes with its
/// arguments, registered at link time under its module path and name.
#[proc_macro_attribute]
pub fn initializer(attr: TokenStream, item: TokenStream) -> TokenStream {
    let function = syn::parse_macro_input!(item as ItemFn);
    expand_initializer(attr.into(), function)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Makes `main` start with `procpool::init()`: a program started as a
/// worker serves and exits before any of `main` runs.
#[proc_macro_attribute]
pub fn main(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut function = syn::parse_macro_input!(item as ItemFn);
    if !attr.is_empty() {
        return syn::Error::new(Span::call_site(), "#[procpool::main] takes no arguments")
            .into_compile_error()
            .into();
    }
    let body = &function.block;
    function.block = syn::parse_quote!({
        ::procpool::init();
        #body
    });
    quote!(#function).into()
}

/// What the two attributes read alike from a function.
struct Plain<'a> {
    /// The function, for the `call` method.
    function: &'a ItemFn,
    /// Its documentation and `cfg`, which describe the value it becomes.
    attrs: Vec<&'a syn::Attribute>,
    /// The rest (`inline`, lints), which stay on the function.
    fn_attrs: Vec<&'a syn::Attribute>,
    /// The type of the state it borrows, for a task's `&State` first parameter.
    state: Option<Type>,
    /// The type of its input (its parameters, a tuple for several).
    input: TokenStream2,
    /// Binds `arg0`, `arg1`, ... from `input`.
    unpack: TokenStream2,
    /// `arg0, arg1, ...`.
    args: Vec<proc_macro2::Ident>,
    /// Its name: `name = "..."`, or its module path and name.
    name: TokenStream2,
}

/// Reads `function` for `#[procpool::<what>]`; `borrows` lets a first
/// parameter `&State` borrow the worker's state.
fn read_plain<'a>(
    what: &str,
    attr: TokenStream2,
    function: &'a ItemFn,
    borrows: bool,
) -> syn::Result<Plain<'a>> {
    let mut name: Option<LitStr> = None;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("name") {
            name = Some(meta.value()?.parse()?);
            Ok(())
        } else {
            Err(meta.error(format!(
                "unknown argument: #[procpool::{what}] takes `name = \"...\"`"
            )))
        }
    });
    parser.parse2(attr)?;

    let sig = &function.sig;
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(syn::Error::new(
            sig.generics.span(),
            format!("a {what} cannot be generic: its types are its identity"),
        ));
    }
    if let Some(token) = &sig.asyncness {
        return Err(syn::Error::new(
            token.span(),
            format!("a {what} cannot be async"),
        ));
    }
    let (attrs, fn_attrs): (Vec<_>, Vec<_>) = function
        .attrs
        .iter()
        .partition(|a| a.path().is_ident("doc") || a.path().is_ident("cfg"));

    let mut state = None;
    let mut types = Vec::new();
    for (i, arg) in sig.inputs.iter().enumerate() {
        let typed = match arg {
            FnArg::Typed(typed) => typed,
            FnArg::Receiver(receiver) => {
                return Err(syn::Error::new(
                    receiver.span(),
                    format!("a {what} is a plain function, without self"),
                ));
            }
        };
        match &*typed.ty {
            Type::Reference(reference) if borrows && i == 0 && reference.mutability.is_none() => {
                state = Some((*reference.elem).clone());
            }
            Type::Reference(reference) => {
                return Err(syn::Error::new(
                    reference.span(),
                    format!(
                        "a {what} takes its inputs by value{}",
                        if borrows {
                            "; only its first parameter can borrow (`&State`) the state the \
                             pool's initializer made"
                        } else {
                            ""
                        }
                    ),
                ));
            }
            ty => types.push(ty.clone()),
        }
    }
    let args: Vec<_> = (0..types.len()).map(|i| format_ident!("arg{i}")).collect();
    let (input, unpack) = match types.as_slice() {
        [single] => (quote!(#single), quote!(let arg0 = input;)),
        many => (quote!((#(#many,)*)), quote!(let (#(#args,)*) = input;)),
    };
    let name = match name {
        Some(name) => quote!(#name),
        None => {
            let fn_name = sig.ident.to_string();
            quote!(::core::concat!(::core::module_path!(), "::", #fn_name))
        }
    };
    Ok(Plain {
        function,
        attrs,
        fn_attrs,
        state,
        input,
        unpack,
        args,
        name,
    })
}

impl Plain<'_> {
    /// The unit struct of the function's name, with its `call` method.
    fn value(&self, what: &str) -> TokenStream2 {
        let Plain {
            function,
            attrs,
            fn_attrs,
            ..
        } = self;
        let (vis, sig, block) = (&function.vis, &function.sig, &function.block);
        let (ident, inputs, output) = (&sig.ident, &sig.inputs, &sig.output);
        let doc = format!("Runs this {what}'s function here, in this process, as a plain call.");
        quote! {
            #(#attrs)*
            #[allow(non_camel_case_types)]
            #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
            #vis struct #ident;

            impl #ident {
                #[doc = #doc]
                #(#fn_attrs)*
                #[allow(clippy::needless_pass_by_value, dead_code)]
                #vis fn call(self, #inputs) #output #block
            }
        }
    }

    /// The type it returns (`T` of a `Result<T, E>`), and the expression
    /// that calls it with `prefix` before its arguments and makes a
    /// `Result<T, Failure>`.
    fn result(&self, prefix: TokenStream2) -> (TokenStream2, TokenStream2) {
        let ident = &self.function.sig.ident;
        let args = &self.args;
        let call = quote!(#ident.call(#prefix #(#args),*));
        match &self.function.sig.output {
            ReturnType::Default => (quote!(()), quote!(::core::result::Result::Ok(#call))),
            ReturnType::Type(_, ty) => match result_ok_type(ty) {
                Some(ok) => (
                    quote!(#ok),
                    quote!(#call.map_err(|error| ::procpool::Failure::msg(
                        ::std::string::ToString::to_string(&error)
                    ))),
                ),
                None => (quote!(#ty), quote!(::core::result::Result::Ok(#call))),
            },
        }
    }
}

fn expand_task(attr: TokenStream2, function: ItemFn) -> syn::Result<TokenStream2> {
    let plain = read_plain("task", attr, &function, true)?;
    let ident = &function.sig.ident;
    let value = plain.value("task");
    let (input_type, unpack, task_name) = (&plain.input, &plain.unpack, &plain.name);
    let (borrow, prefix) = match &plain.state {
        Some(state) => (
            quote!(let state = ::procpool::__private::worker_state::<#state>()?;),
            quote!(state,),
        ),
        None => (quote!(), quote!()),
    };
    let (output_type, run) = plain.result(prefix);
    Ok(quote! {
        #value

        impl ::procpool::Task for #ident {
            const NAME: &'static str = #task_name;
            type Input = #input_type;
            type Output = #output_type;
            fn run(
                input: Self::Input,
            ) -> ::core::result::Result<Self::Output, ::procpool::Failure> {
                #borrow
                #unpack
                #run
            }
        }

        ::procpool::register!(#ident);
    })
}

fn expand_initializer(attr: TokenStream2, function: ItemFn) -> syn::Result<TokenStream2> {
    let plain = read_plain("initializer", attr, &function, false)?;
    let ident = &function.sig.ident;
    let value = plain.value("initializer");
    let (args_type, unpack, init_name) = (&plain.input, &plain.unpack, &plain.name);
    let (state_type, run) = plain.result(quote!());
    Ok(quote! {
        #value

        impl ::procpool::Initializer for #ident {
            const NAME: &'static str = #init_name;
            type Args = #args_type;
            type State = #state_type;
            fn run(
                input: Self::Args,
            ) -> ::core::result::Result<Self::State, ::procpool::Failure> {
                #unpack
                #run
            }
        }

        ::procpool::register_initializer!(#ident);
    })
}

/// `T` of a return type `Result<T, E>` (or a `Result<T>` alias such as
/// `io::Result<T>`); `None` for any other type.
fn result_ok_type(ty: &Type) -> Option<&Type> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first()? {
        GenericArgument::Type(ok) => Some(ok),
        _ => None,
    }
}
