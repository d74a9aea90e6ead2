//! The attribute macros of procpool, re-exported by it: see
//! `procpool::task` and `procpool::main` for their documentation and
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

fn expand_task(attr: TokenStream2, function: ItemFn) -> syn::Result<TokenStream2> {
    let mut name: Option<LitStr> = None;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("name") {
            name = Some(meta.value()?.parse()?);
            Ok(())
        } else {
            Err(meta.error("unknown argument: #[procpool::task] takes `name = \"...\"`"))
        }
    });
    parser.parse2(attr)?;

    let sig = &function.sig;
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(syn::Error::new(
            sig.generics.span(),
            "a task cannot be generic: its input and output types are its identity",
        ));
    }
    if let Some(token) = &sig.asyncness {
        return Err(syn::Error::new(token.span(), "a task cannot be async"));
    }
    let ident = &sig.ident;
    let vis = &function.vis;
    // Documentation and `cfg` describe the task; the rest (`inline`,
    // lints) belong to the function.
    let (attrs, fn_attrs): (Vec<_>, Vec<_>) = function
        .attrs
        .iter()
        .partition(|a| a.path().is_ident("doc") || a.path().is_ident("cfg"));
    let block = &function.block;
    let inputs = &sig.inputs;
    let output = &sig.output;

    let mut types = Vec::new();
    for arg in inputs {
        match arg {
            FnArg::Typed(typed) => types.push((*typed.ty).clone()),
            FnArg::Receiver(receiver) => {
                return Err(syn::Error::new(
                    receiver.span(),
                    "a task is a plain function, without self",
                ));
            }
        }
    }
    let args: Vec<_> = (0..types.len()).map(|i| format_ident!("arg{i}")).collect();
    let (input_type, unpack) = match types.as_slice() {
        [single] => (quote!(#single), quote!(let arg0 = input;)),
        many => (quote!((#(#many,)*)), quote!(let (#(#args,)*) = input;)),
    };
    let call = quote!(#ident.call(#(#args),*));
    let (output_type, run) = match output {
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
    };
    let task_name = match name {
        Some(name) => quote!(#name),
        None => {
            let fn_name = ident.to_string();
            quote!(::core::concat!(::core::module_path!(), "::", #fn_name))
        }
    };

    Ok(quote! {
        #(#attrs)*
        #[allow(non_camel_case_types)]
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        #vis struct #ident;

        impl #ident {
            /// Runs this task's function here, in this process, as a plain call.
            #(#fn_attrs)*
            #[allow(clippy::needless_pass_by_value, dead_code)]
            #vis fn call(self, #inputs) #output #block
        }

        impl ::procpool::Task for #ident {
            const NAME: &'static str = #task_name;
            type Input = #input_type;
            type Output = #output_type;
            fn run(
                input: Self::Input,
            ) -> ::core::result::Result<Self::Output, ::procpool::Failure> {
                #unpack
                #run
            }
        }

        ::procpool::register!(#ident);
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
